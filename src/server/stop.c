/* stop.c - stop strings over a growing text. The answer streams out as it
 * is generated, so a tail that may still become a stop string is held back
 * until the next text decides it; when a stop string appears, the answer
 * ends just before it. */
#include <string.h>

#include "internal.h"

size_t sp_stop_scan(const char *text, size_t len, size_t from, char *const *stops, int n_stops, bool final,
                    bool *hit)
{
    *hit = false;
    size_t first = len;
    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        /* a stop string ending after `from` may start up to sl - 1 earlier */
        size_t start = from >= sl ? from - sl + 1 : 0;
        for (size_t k = start; k + sl <= len && k < first; k++)
            if (!memcmp(text + k, stops[i], sl)) {
                first = k;
                *hit = true;
                break;
            }
    }
    if (*hit || final) return first < from ? from : first;
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t safe = len;
    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        for (size_t t = sl - 1; t > 0; t--)
            if (t <= len && !memcmp(text + len - t, stops[i], t)) {
                if (len - t < safe) safe = len - t;
                break;
            }
    }
    return safe < from ? from : safe;
}
