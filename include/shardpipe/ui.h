/* ui.h - the static files `shardpipe serve` answers with, compiled into the
 * binary from src/ui/ by cmake/embed.cmake (boards are offline: no CDN). */
#ifndef SHARDPIPE_UI_H
#define SHARDPIPE_UI_H

#include <stddef.h>

/* src/ui/chat.html, the chat page at `/` (text/html; charset=utf-8).
 * sp_ui_chat_html[sp_ui_chat_html_len] is 0, so it is also a C string. */
extern const unsigned char sp_ui_chat_html[];
extern const size_t sp_ui_chat_html_len;

#endif
