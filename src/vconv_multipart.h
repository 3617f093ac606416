/*
 * vconv: a streaming multipart/form-data parser.  Bytes are fed as they
 * arrive in any split; the file part's content goes to on_file_data()
 * without being held, small fields are collected whole (bounded) and
 * handed to on_field().  No allocation: the state is this struct.
 */

#ifndef _VCONV_MULTIPART_H_INCLUDED_
#define _VCONV_MULTIPART_H_INCLUDED_


#include "vconv.h"


#define VCONV_MP_BOUNDARY_MAX  70      /* RFC 2046 */
#define VCONV_MP_HEADER_MAX    1024    /* one part header line */
#define VCONV_MP_FIELD_MAX     4096    /* one small field's value */
#define VCONV_MP_NAME_MAX      256     /* a form field's name */
#define VCONV_MP_FILENAME_MAX  1024
#define VCONV_MP_PARTS_MAX     64


typedef struct {
    /* callbacks; a nonzero return stops the parse with err set by them */
    int   (*on_field)(void *data, const char *name, size_t nlen,
                      const char *value, size_t vlen, vconv_error_t *err);
    int   (*on_file_begin)(void *data, const char *filename, size_t len,
                           vconv_error_t *err);
    int   (*on_file_data)(void *data, const uint8_t *p, size_t len,
                          vconv_error_t *err);
    int   (*on_file_end)(void *data, vconv_error_t *err);
    void   *data;

    /* private state */
    int     state;
    char    boundary[VCONV_MP_BOUNDARY_MAX + 4 + 1]; /* "\r\n--" + b */
    size_t  blen;
    size_t  match;                  /* bytes of boundary matched so far */
    char    line[VCONV_MP_HEADER_MAX];
    size_t  line_len;
    char    name[VCONV_MP_NAME_MAX];
    size_t  name_len;
    char    filename[VCONV_MP_FILENAME_MAX];
    size_t  filename_len;
    int     is_file;
    int     has_filename;
    char    value[VCONV_MP_FIELD_MAX];
    size_t  value_len;
    int     parts;
    int     files;
    int     done;
} vconv_multipart_t;


/*
 * Takes the Content-Type header value; fails with VCONV_E_INVALID_VALUE if
 * it is not multipart/form-data with a valid boundary.  Callbacks are set
 * by the caller before or after init.
 */
int vconv_multipart_init(vconv_multipart_t *mp, const char *content_type,
    size_t len, vconv_error_t *err);

/* Feeds the next bytes; VCONV_ERROR with err set on malformed input. */
int vconv_multipart_feed(vconv_multipart_t *mp, const uint8_t *p,
    size_t len, vconv_error_t *err);

/* At the end of the body: VCONV_ERROR unless the closing boundary came. */
int vconv_multipart_finish(vconv_multipart_t *mp, vconv_error_t *err);

/* 1 if the parser is inside the file part's content right now */
int vconv_multipart_in_file(const vconv_multipart_t *mp);


#endif /* _VCONV_MULTIPART_H_INCLUDED_ */
