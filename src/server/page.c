/* page.c - the built-in page served at GET /: src/ui/chat.html, compiled in
 * as a C array by cmake/embed.cmake (the sp_ui library; no CDN, boards are
 * offline). The array ends in a 0, so it is also the C string served. */
#include "shardpipe/server.h"
#include "shardpipe/ui.h"

const char *sp_server_index_page(void) { return (const char *)sp_ui_chat_html; }
