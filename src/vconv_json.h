/*
 * vconv: writing JSON text by hand for the API's answers: the string
 * escaper every piece of user-controlled text goes through, and a
 * bounded, counting output buffer.
 */

#ifndef _VCONV_JSON_H_INCLUDED_
#define _VCONV_JSON_H_INCLUDED_


#include <stddef.h>


/*
 * Appends s to buf (of size len, at *pos) as a JSON string body, escaped
 * (no surrounding quotes); truncates safely.  Used for every piece of
 * user-controlled text that goes into JSON.
 */
void vconv_json_escape(char *buf, size_t len, size_t *pos, const char *s,
    size_t slen);

/*
 * The same, snprintf-style: *pos advances by the full escaped length even
 * past len (so a writer can report the size it needs), while buf gets the
 * longest prefix of whole escapes that fits, NUL-terminated.
 */
void vconv_json_escape_count(char *buf, size_t len, size_t *pos,
    const char *s, size_t slen);

/*
 * A bounded, counting output buffer, snprintf-style: pos keeps counting
 * past len, so a caller learns the size it needs; buf stays terminated.
 */
typedef struct {
    char    *buf;
    size_t   len;
    size_t   pos;
} vconv_out_t;

/* starts o over buf; a NULL buf only counts */
void vconv_out_init(vconv_out_t *o, char *buf, size_t len);

void vconv_out(vconv_out_t *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;


#endif /* _VCONV_JSON_H_INCLUDED_ */
