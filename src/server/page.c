/* page.c - the built-in page served at GET /. None yet: the chat page (one
 * static HTML file, no CDN) is compiled in here as a string and returned. */
#include "shardpipe/server.h"

const char *sp_server_index_page(void) { return NULL; }
