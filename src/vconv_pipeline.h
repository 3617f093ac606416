/*
 * vconv: the transcode job's private state, shared by the pipeline's
 * parts: vconv_transcode.c (input, stream selection, the packet loop),
 * vconv_filter.c (filter graphs) and vconv_encode.c (encoders, muxer),
 * with how a job fails or stops in vconv_pipeline.c, which the three use
 * and which uses none of them; tags, covers and chapters in
 * vconv_metadata.c.  Not part of the core's public contract.
 */

#ifndef _VCONV_PIPELINE_H_INCLUDED_
#define _VCONV_PIPELINE_H_INCLUDED_


#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>

#include "vconv.h"
#include "vconv_options.h"
#include "vconv_transcode.h"


typedef struct {
    int                 index;      /* input stream index, -1: unused */
    AVStream           *ist;
    AVStream           *ost;
    AVCodecContext     *dec;
    AVCodecContext     *enc;
    AVFilterGraph      *graph;
    AVFilterContext    *src;
    AVFilterContext    *sink;
    int                 copy;       /* remux packets, no decoding */
    int                 rotation;   /* clockwise degrees: 0, 90, 180, 270 */
    const char         *turn;       /* filters that make it upright */

    /* what the graph was built for; a change rebuilds it */
    int                 in_w;
    int                 in_h;
    int                 in_fmt;
    AVChannelLayout     in_layout;  /* audio */

    /* the encoder's picture, fixed for the whole job */
    int                 out_w;
    int                 out_h;
    int                 out_fmt;
    int                 graphs;     /* graphs built: >1 after a change */
    int                 tonemap;    /* HDR in, SDR BT.709 out */
    int                 hdr;        /* HDR in, HDR out (hdr=keep) */

    /*
     * Video timing: where the input's last frame ends (its own duration,
     * a GIF's final delay), offset-adjusted, in the input's time base;
     * the time of the frame before it; the frame held back from the
     * encoder until the next one tells its duration; and the durations
     * of the frames inside the encoder, for its packets.
     */
    int64_t             end_ts;
    int64_t             prev_ts;
    AVFrame            *pend;
#define VCONV_DUR_RING  128
    int64_t             ring_pts[VCONV_DUR_RING];
    int64_t             ring_dur[VCONV_DUR_RING];
    unsigned            ring_pos;
    AVPacket           *hpkt;       /* the encoder's last packet, held */
    int64_t             max_end;    /* latest pts + duration, encoder tb */
    int64_t             shift;      /* first packet's pts - dts */
    int                 npkts;      /* packets out of the encoder */

    int64_t             last_pts;   /* video: keeps encoder pts rising */
    int64_t             next_key;   /* hls: us of the next key frame */
    int64_t             last_dts;   /* muxer's time base: keeps dts rising */
    int64_t             frames;     /* frames sent to the encoder */
    int64_t             decoded;    /* video frames from the decoder */
    int64_t             clamped;    /* audio samples made finite, in range */

    /* audio: the last frame time seen, and samples since, for those without */
    int64_t             base_ts;
    int64_t             base_samples;
    int                 started;    /* copy: first key packet seen */
    int                 done;       /* no more packets for the muxer */
} vconv_stream_t;


typedef struct {
    vconv_transcode_t      *tc;
    const vconv_spec_t     *spec;
    const vconv_format_t   *fmt;
    const vconv_limits_t   *limits;

    AVIOContext            *ipb;
    AVFormatContext        *ifmt;
    AVFormatContext        *ofmt;
    int                     out_open;    /* avio_open done */
    int                     header;      /* header written */

    vconv_stream_t          v;
    vconv_stream_t          a;

    AVPacket               *pkt;
    AVPacket               *opkt;
    AVFrame                *frame;
    AVFrame                *filt;
    AVFrame                *held;     /* image: last picture before start */
    AVStream               *cover_ist; /* the input's cover picture */
    AVStream               *cover_ost; /* and where it goes */

    /*
     * hdr=keep: the HDR10 side data of the first frame (HEVC and AV1
     * carry it in the bitstream, not the container), and the packets
     * read to decode that frame, which the packet loop takes first.
     */
    AVBufferRef            *hdr_md;
    AVBufferRef            *hdr_cll;
#define VCONV_PEEK_MAX  64
    AVPacket               *peeked[VCONV_PEEK_MAX];
    int                     npeeked;
    int                     peek_next;

    int64_t                 offset;   /* input us that becomes output 0 */
    int64_t                 start;    /* us after the file start */
    int64_t                 length;   /* us to convert, 0: to the end */
    double                  total;    /* s of output expected, 0: unknown */
    double                  out_time; /* s written so far */
    double                  in_time;  /* s decoded and sent on so far */
    double                  fraction; /* progress last told */
    int64_t                 last_progress;  /* monotonic us */

    vconv_err_e             stop;     /* set by the interrupt callback */
    int                     read_err; /* the caller's read failed */
    int                     seeked;   /* seeked to the start */

    /*
     * A list of formats: this job demuxes and decodes, and hands each
     * decoded frame to the outputs' own jobs (their graphs, encoders,
     * muxers), which share its input and decoders.
     */
    struct vconv_out_s     *outs;
    int                     nouts;
} vconv_job_t;


/* vconv_filter.c */
void vconv_filter_video_plan(vconv_job_t *job, vconv_stream_t *st,
    const AVCodec *codec, int in_w, int in_h, int in_fmt);
int vconv_filter_video_init(vconv_job_t *job, vconv_stream_t *st,
    const AVFrame *frame);
int vconv_filter_audio_init(vconv_job_t *job, vconv_stream_t *st,
    const AVFrame *frame);
void vconv_filter_free(vconv_stream_t *st);
/* a libav filter call failed: the input's property (422) or ours (500) */
int vconv_filter_error(vconv_job_t *job, vconv_stream_t *st, int averr,
    const char *call);
int vconv_filter_rotation(AVStream *st, const char **turn);
/* ",zscale=...": HDR (PQ, HLG) to BT.709 SDR, limited range */
int vconv_filter_tonemap(char *buf, size_t len, const AVFrame *frame,
    const AVCodecContext *dec);

/* vconv_encode.c */
int vconv_output_open(vconv_job_t *job);
int vconv_output_video(vconv_job_t *job, vconv_stream_t *st);
int vconv_output_audio(vconv_job_t *job, vconv_stream_t *st);
int vconv_output_copy(vconv_job_t *job, vconv_stream_t *st);
int vconv_output_header(vconv_job_t *job);
int vconv_output_frame(vconv_job_t *job, vconv_stream_t *st,
    AVFrame *frame);
int vconv_output_packet(vconv_job_t *job, vconv_stream_t *st,
    AVPacket *pkt, AVRational tb);
int vconv_output_trailer(vconv_job_t *job);
void vconv_output_close(vconv_job_t *job);

/*
 * The output is the file's len bytes from "from" on: moved to the
 * file's start, the rest cut off (vconv_target.c, with output_base)
 */
int vconv_output_keep(const vconv_transcode_t *tc, int64_t from,
    int64_t len);

/* vconv_metadata.c */
int vconv_metadata_apply(vconv_job_t *job);
int vconv_metadata_cover(vconv_job_t *job);
int vconv_metadata_hdr_peek(vconv_job_t *job, vconv_stream_t *st);
const uint8_t *vconv_metadata_hdr(vconv_job_t *job, vconv_stream_t *st,
    enum AVPacketSideDataType type, size_t *size);
int vconv_metadata_read(vconv_job_t *job, AVPacket *pkt);
void vconv_metadata_unpeek(vconv_job_t *job);
void vconv_metadata_free(vconv_job_t *job);
int vconv_metadata_dovi(vconv_job_t *job, vconv_stream_t *st);

/* vconv_pipeline.c */
int vconv_job_fail(vconv_job_t *job, vconv_err_e code, int averr,
    const char *what);
int vconv_job_interrupt(void *data);


#endif /* _VCONV_PIPELINE_H_INCLUDED_ */
