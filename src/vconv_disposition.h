/*
 * vconv: the Content-Disposition of a download.
 */

#ifndef _VCONV_DISPOSITION_H_INCLUDED_
#define _VCONV_DISPOSITION_H_INCLUDED_


#include <stddef.h>


/*
 * The value of Content-Disposition for a download: attachment with an
 * ASCII fallback filename (unsafe bytes replaced) and an RFC 5987
 * filename* with the UTF-8 name; the name's extension is replaced by ext.
 * Returns the length needed (like snprintf).
 */
size_t vconv_content_disposition(const char *name, size_t nlen,
    const char *ext, char *buf, size_t len);


#endif /* _VCONV_DISPOSITION_H_INCLUDED_ */
