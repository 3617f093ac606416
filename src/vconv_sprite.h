/*
 * vconv: format=sprite, a JPEG grid of thumbnails taken every interval,
 * and the WebVTT that maps each time range to its tile (vconv_sprite.c).
 * This header is libav-free: the glue writes the VTT from the grid the
 * core reports.
 */

#ifndef _VCONV_SPRITE_H_INCLUDED_
#define _VCONV_SPRITE_H_INCLUDED_


#include <stddef.h>


#define VCONV_SPRITE_COLUMNS    10
#define VCONV_SPRITE_WIDTH      160
/* the default interval keeps a clip at about this many tiles or fewer */
#define VCONV_SPRITE_TILES      100
/* the grid's bound when the input does not say how long it is */
#define VCONV_SPRITE_MAX_TILES  1000


/* the grid as made: what the VTT needs */
typedef struct {
    int             tiles;          /* thumbnails in the grid, 0: none */
    int             columns;        /* tiles a row in the grid */
    int             tile_w;
    int             tile_h;
    double          interval;       /* seconds between thumbnails */
    double          duration;       /* seconds the last cue ends, 0: open */
} vconv_sprite_t;


/*
 * The interval (us) for an input of duration us (0: unknown) when the
 * request sets none: whole seconds, at most VCONV_SPRITE_TILES tiles.
 */
long long vconv_sprite_interval(long long duration);

/*
 * The WebVTT text: one cue per tile, "url#xywh=x,y,w,h" (url relative to
 * the VTT's own).  snprintf-style: returns the length it needs.
 */
size_t vconv_sprite_vtt(const vconv_sprite_t *sp, const char *url,
    char *buf, size_t len);


#endif /* _VCONV_SPRITE_H_INCLUDED_ */
