/*
 * vconv: HLS playlists over fragmented MP4 rungs (issue 13).
 *
 * Each rung of format=hls is one fragmented MP4 file written by the
 * engine like any output (one fragment per forced key frame, every
 * VCONV_HLS_SEGMENT).  The playlists are written afterwards from the
 * files themselves: the init section (ftyp + moov) is the EXT-X-MAP, each
 * moof + mdat a segment addressed by EXT-X-BYTERANGE, its duration from
 * the video track's tfdt.  One file per rung keeps the sandboxed child
 * to the descriptors it is given: it creates no file and writes no
 * playlist.
 */

#ifndef _VCONV_HLS_H_INCLUDED_
#define _VCONV_HLS_H_INCLUDED_


#include "vconv.h"


typedef struct {
    const char     *media;       /* the rung's file name, in dir */
    const char     *playlist;    /* its playlist's file name, in dir */
    int             width;
    int             height;
    double          duration;    /* seconds, for the last segment */
} vconv_hls_rung_t;


/*
 * Writes dir/<rung.playlist> for each rung and dir/master.m3u8, reading
 * dir/<rung.media>.  VCONV_OK, or VCONV_ERROR with err set.
 */
int vconv_hls_write(const char *dir, const vconv_hls_rung_t *rungs, int n,
    vconv_error_t *err);


#endif /* _VCONV_HLS_H_INCLUDED_ */
