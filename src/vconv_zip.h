/*
 * vconv: /api/jobs/{id}/outputs.zip, a STORED zip of a job's outputs
 * (vconv_zip.c).  The CRCs are taken once, when the job ends, on its
 * thread, and kept in the job folder's zip.idx; the handler builds the
 * headers from it in memory and sends the outputs as they are on disk.
 */

#ifndef _VCONV_ZIP_H_INCLUDED_
#define _VCONV_ZIP_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "vconv.h"


#define VCONV_ZIP_INDEX        "zip.idx"
#define VCONV_ZIP_MAX_ENTRIES  64
#define VCONV_ZIP_PATH_MAX     128     /* in the job folder */
#define VCONV_ZIP_NAME_MAX     224     /* in the zip */

/* without zip64 every size and offset is 32 bits: the whole zip below */
#define VCONV_ZIP_MAX_BYTES    0xffffffffLL

#define VCONV_ZIP_LOCAL        30      /* + name */
#define VCONV_ZIP_CENTRAL      46      /* + name */
#define VCONV_ZIP_END          22


typedef struct {
    char            path[VCONV_ZIP_PATH_MAX];
    char            name[VCONV_ZIP_NAME_MAX];
    int64_t         size;
    uint32_t        crc;
} vconv_zip_entry_t;


/*
 * Reads every output in dir ("output", "output.NAME", "hls/..."), takes
 * its CRC-32 and writes dir/zip.idx atomically.  in_name is the upload's
 * file name (any bytes), first_format the format of "output"; the zip's
 * names are the input's base name with each output's extension.
 * Blocking file reads: call it off the event loop.
 */
int vconv_zip_index(const char *dir, const char *in_name, size_t in_len,
    int first_format, vconv_error_t *err);

/* zip.idx back: *n entries, in the zip's order */
int vconv_zip_load(const char *dir, vconv_zip_entry_t *e, int max, int *n,
    vconv_error_t *err);

/* the whole zip's size, -1 past VCONV_ZIP_MAX_BYTES */
int64_t vconv_zip_size(const vconv_zip_entry_t *e, int n);

/*
 * The headers, little-endian as the format says; dos is the entries'
 * MS-DOS date << 16 | time.  Each returns the bytes written to buf.
 */
size_t vconv_zip_local(const vconv_zip_entry_t *e, uint32_t dos,
    unsigned char *buf);
size_t vconv_zip_central(const vconv_zip_entry_t *e, uint32_t dos,
    uint32_t offset, unsigned char *buf);
size_t vconv_zip_end(int n, uint32_t cd_size, uint32_t cd_offset,
    unsigned char *buf);

/* unix seconds to the MS-DOS date and time of a zip entry, UTC */
uint32_t vconv_zip_dos_time(int64_t t);


#endif /* _VCONV_ZIP_H_INCLUDED_ */
