/*
 * vconv: what the output keeps of the input's metadata: descriptive tags
 * (mapped by libav's common names, which each muxer writes in its own
 * form: ID3v2 frames, MP4 ilst atoms, Vorbis comments, Matroska tags),
 * the cover picture where the output can hold one, and chapters.
 *
 * metadata=strip keeps none of it; the default keeps the descriptive
 * tags but no location (a phone's GPS: where someone lives); keep keeps
 * every tag the muxer can write, location too.
 */

#include <string.h>

#include <libavutil/avstring.h>
#include <libavutil/base64.h>
#include <libavutil/dovi_meta.h>
#include <libavutil/intreadwrite.h>

#include "vconv_pipeline.h"


typedef struct {
    const char  *name;        /* libav's common name */
    const char  *alias;       /* how some containers spell it, or NULL */
} vconv_tag_t;


/* the descriptive tags; what is not here is dropped by default */
static const vconv_tag_t  vconv_tags[] = {
    { "title", NULL },
    { "artist", NULL },
    { "album", NULL },
    { "album_artist", "albumartist" },
    { "date", "year" },
    { "track", "tracknumber" },
    { "disc", "discnumber" },
    { "genre", NULL },
    { "comment", "description" },
    { "composer", NULL },
    { "performer", NULL },
    { "copyright", NULL },
    { "lyrics", NULL },
    { NULL, NULL }
};


/* the muxers write these themselves; the input's would be false */
static const char  *vconv_tags_technical[] = {
    "encoder", "major_brand", "minor_version", "compatible_brands",
    "handler_name", "vendor_id", "duration", NULL
};


static int vconv_metadata_tags(vconv_job_t *job, AVDictionary **out,
    AVDictionary *in);
static int vconv_metadata_is(const char *key, const char *const *list);
static int vconv_metadata_stream_tags(vconv_job_t *job,
    vconv_stream_t *st);
static int vconv_metadata_cover_stream(vconv_job_t *job);
static int vconv_metadata_attachment(vconv_job_t *job, AVStream *ist);
static int vconv_metadata_chapters(vconv_job_t *job);
static int vconv_metadata_is_ogg(vconv_job_t *job);
static AVStream *vconv_metadata_find_cover(vconv_job_t *job);
static int vconv_metadata_ogg_cover(vconv_job_t *job);


/*
 * Before the output's header: its tags, its cover's stream, its
 * chapters.  A tag or chapter that cannot be copied is not worth the
 * job: only memory fails it.
 */
int
vconv_metadata_apply(vconv_job_t *job)
{
    int  rc;

    rc = vconv_metadata_stream_tags(job, &job->v);
    if (rc == VCONV_OK) {
        rc = vconv_metadata_stream_tags(job, &job->a);
    }

    if (rc != VCONV_OK) {
        return rc;
    }

    if (job->spec->metadata == VCONV_META_STRIP) {
        /* muxers add their own "encoder" tag: a technical field */
        return VCONV_OK;
    }

    rc = vconv_metadata_tags(job, &job->ofmt->metadata, job->ifmt->metadata);
    if (rc != VCONV_OK) {
        return rc;
    }

    /* Ogg and FLAC may keep their comments with the stream, not the file */
    if (job->a.ist != NULL && job->fmt->kind == VCONV_KIND_AUDIO) {
        rc = vconv_metadata_tags(job, &job->ofmt->metadata,
                                 job->a.ist->metadata);
        if (rc != VCONV_OK) {
            return rc;
        }
    }

    /* Ogg writes its Vorbis comments from the stream's tags */
    if (vconv_metadata_is_ogg(job)) {
        rc = av_dict_copy(&job->a.ost->metadata, job->ofmt->metadata, 0);
        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_NOMEM, rc, "tags");
        }

        rc = vconv_metadata_ogg_cover(job);
        if (rc != VCONV_OK) {
            return rc;
        }
    }

    rc = vconv_metadata_cover_stream(job);
    if (rc != VCONV_OK) {
        return rc;
    }

    return vconv_metadata_chapters(job);
}


/* after the header: the cover's one packet, before any sound */
int
vconv_metadata_cover(vconv_job_t *job)
{
    int        rc;
    AVPacket  *pkt;

    if (job->cover_ost == NULL || job->cover_ist == NULL) {
        return VCONV_OK;
    }

    pkt = av_packet_clone(&job->cover_ist->attached_pic);
    if (pkt == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "cover");
    }

    pkt->stream_index = job->cover_ost->index;
    pkt->pts = 0;
    pkt->dts = 0;
    pkt->pos = -1;
    pkt->flags |= AV_PKT_FLAG_KEY;

    rc = av_interleaved_write_frame(job->ofmt, pkt);
    av_packet_free(&pkt);

    if (rc < 0) {
        /* a picture its muxer refuses is not worth the sound */
        av_log(job->ofmt, AV_LOG_WARNING, "cover not written: %s\n",
               av_err2str(rc));
    }

    return VCONV_OK;
}


static int
vconv_metadata_tags(vconv_job_t *job, AVDictionary **out, AVDictionary *in)
{
    int                        keep;
    const char                *key;
    const vconv_tag_t         *t;
    const AVDictionaryEntry   *e;

    keep = job->spec->metadata == VCONV_META_KEEP;
    e = NULL;

    while ((e = av_dict_get(in, "", e, AV_DICT_IGNORE_SUFFIX)) != NULL) {
        key = NULL;

        /* av_strcasecmp: Vorbis comments and Matroska tags are capitals */
        for (t = vconv_tags; t->name != NULL; t++) {
            if (av_strcasecmp(e->key, t->name) == 0
                || (t->alias && av_strcasecmp(e->key, t->alias) == 0))
            {
                key = t->name;
                break;
            }
        }

        if (key == NULL) {
            if (!keep || vconv_metadata_is(e->key, vconv_tags_technical)) {
                continue;
            }

            key = e->key;
        }

        /* the first one wins: the file's own over its stream's */
        if (av_dict_get(*out, key, NULL, 0) != NULL) {
            continue;
        }

        if (av_dict_set(out, key, e->value, 0) < 0) {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "tags");
        }
    }

    return VCONV_OK;
}


/*
 * A track's language (how players pick the audio a viewer asked for) is
 * kept even by metadata=strip: it says nothing of who made the file.
 * Its title goes with the descriptive tags and, in MP4 and MOV, names
 * the track's handler too, which some players show as the track's
 * name; without one the muxer writes its own ("SoundHandler").
 */
static int
vconv_metadata_stream_tags(vconv_job_t *job, vconv_stream_t *st)
{
    const char               *muxer;
    const AVDictionaryEntry  *e;

    if (st->ist == NULL || st->ost == NULL) {
        return VCONV_OK;
    }

    e = av_dict_get(st->ist->metadata, "language", NULL, 0);

    if (e != NULL && e->value[0] != '\0' && strcmp(e->value, "und") != 0
        && av_dict_set(&st->ost->metadata, "language", e->value, 0) < 0)
    {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "tags");
    }

    /* an audio file's track title is its file's (vconv_metadata_apply) */
    if (job->spec->metadata == VCONV_META_STRIP
        || job->fmt->kind != VCONV_KIND_VIDEO)
    {
        return VCONV_OK;
    }

    e = av_dict_get(st->ist->metadata, "title", NULL, 0);
    if (e == NULL || e->value[0] == '\0') {
        return VCONV_OK;
    }

    if (av_dict_set(&st->ost->metadata, "title", e->value, 0) < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "tags");
    }

    muxer = job->ofmt->oformat->name;

    if ((strcmp(muxer, "mp4") == 0 || strcmp(muxer, "mov") == 0)
        && av_dict_set(&st->ost->metadata, "handler_name", e->value, 0) < 0)
    {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "tags");
    }

    return VCONV_OK;
}


static int
vconv_metadata_is(const char *key, const char *const *list)
{
    for ( /* void */ ; *list != NULL; list++) {
        if (av_strcasecmp(key, *list) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * The input's cover (an attached JPEG or PNG) for the outputs that hold
 * one: MP3 (APIC), M4A and MP4 (covr: the poster a Finder or iTunes
 * shows, next to the video as beside the sound), FLAC (PICTURE), Matroska
 * (an attachment).  WebM has no place for one; libav's MOV muxer writes
 * covr for MP4 only.
 */
static int
vconv_metadata_cover_stream(vconv_job_t *job)
{
    int                rc;
    AVStream          *ist, *ost;
    const char        *muxer;

    if (job->fmt->kind != VCONV_KIND_AUDIO
        && job->fmt->kind != VCONV_KIND_VIDEO)
    {
        return VCONV_OK;
    }

    muxer = job->ofmt->oformat->name;

    if (strcmp(muxer, "mp3") != 0 && strcmp(muxer, "ipod") != 0
        && strcmp(muxer, "flac") != 0 && strcmp(muxer, "mp4") != 0
        && strcmp(muxer, "matroska") != 0)
    {
        return VCONV_OK;
    }

    ist = vconv_metadata_find_cover(job);
    if (ist == NULL) {
        return VCONV_OK;
    }

    if (strcmp(muxer, "matroska") == 0) {
        return vconv_metadata_attachment(job, ist);
    }

    ost = avformat_new_stream(job->ofmt, NULL);
    if (ost == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "cover");
    }

    rc = avcodec_parameters_copy(ost->codecpar, ist->codecpar);
    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "cover");
    }

    ost->codecpar->codec_tag = 0;
    ost->disposition = AV_DISPOSITION_ATTACHED_PIC;
    ost->time_base = (AVRational) { 1, 90000 };

    job->cover_ist = ist;
    job->cover_ost = ost;

    return VCONV_OK;
}


/*
 * Matroska keeps a cover as an attachment, a file with a name and a MIME
 * type (what players and the Matroska cover convention look for); its
 * muxer takes the bytes as the stream's extradata and no packet.
 */
static int
vconv_metadata_attachment(vconv_job_t *job, AVStream *ist)
{
    int              png;
    AVStream        *ost;
    const AVPacket  *pic;

    pic = &ist->attached_pic;
    png = ist->codecpar->codec_id == AV_CODEC_ID_PNG;

    ost = avformat_new_stream(job->ofmt, NULL);
    if (ost == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "cover");
    }

    ost->codecpar->codec_type = AVMEDIA_TYPE_ATTACHMENT;
    ost->codecpar->codec_id = ist->codecpar->codec_id;
    ost->codecpar->extradata = av_mallocz(pic->size
                                          + AV_INPUT_BUFFER_PADDING_SIZE);
    if (ost->codecpar->extradata == NULL) {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "cover");
    }

    memcpy(ost->codecpar->extradata, pic->data, pic->size);
    ost->codecpar->extradata_size = pic->size;

    if (av_dict_set(&ost->metadata, "filename",
                    png ? "cover.png" : "cover.jpg", 0) < 0
        || av_dict_set(&ost->metadata, "mimetype",
                       png ? "image/png" : "image/jpeg", 0) < 0)
    {
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "cover");
    }

    return VCONV_OK;
}


/* the input's attached JPEG or PNG, if it has one */
static AVStream *
vconv_metadata_find_cover(vconv_job_t *job)
{
    unsigned         i;
    AVStream        *ist;
    enum AVCodecID   id;

    for (i = 0; i < job->ifmt->nb_streams; i++) {
        ist = job->ifmt->streams[i];
        id = ist->codecpar->codec_id;

        if ((ist->disposition & AV_DISPOSITION_ATTACHED_PIC)
            && ist->attached_pic.size > 0
            && (id == AV_CODEC_ID_MJPEG || id == AV_CODEC_ID_PNG))
        {
            return ist;
        }
    }

    return NULL;
}


static int
vconv_metadata_is_ogg(vconv_job_t *job)
{
    const char  *muxer;

    muxer = job->ofmt->oformat->name;

    return job->a.ost != NULL
           && (strcmp(muxer, "ogg") == 0 || strcmp(muxer, "opus") == 0);
}


/*
 * Ogg's muxer takes no picture stream: the cover goes in the Vorbis
 * comment METADATA_BLOCK_PICTURE, a FLAC PICTURE block in base64, as
 * players read it.
 */
static int
vconv_metadata_ogg_cover(vconv_job_t *job)
{
    int             rc;
    size_t          mlen, len, blen;
    uint8_t        *blk, *p;
    char           *b64;
    AVStream       *ist;
    const char     *mime;
    const AVPacket *pic;

    ist = vconv_metadata_find_cover(job);
    if (ist == NULL) {
        return VCONV_OK;
    }

    pic = &ist->attached_pic;
    mime = ist->codecpar->codec_id == AV_CODEC_ID_PNG ? "image/png"
                                                      : "image/jpeg";
    mlen = strlen(mime);

    /* a cover of many MB would make a comment no player reads */
    if (pic->size > 8 * 1024 * 1024) {
        return VCONV_OK;
    }

    len = 32 + mlen + pic->size;
    blk = av_malloc(len);
    blen = AV_BASE64_SIZE(len);
    b64 = av_malloc(blen);

    if (blk == NULL || b64 == NULL) {
        av_free(blk);
        av_free(b64);
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "cover");
    }

    p = blk;
    AV_WB32(p, 3);                      /* front cover */
    AV_WB32(p + 4, mlen);
    memcpy(p + 8, mime, mlen);
    p += 8 + mlen;
    AV_WB32(p, 0);                      /* no description */
    AV_WB32(p + 4, ist->codecpar->width);
    AV_WB32(p + 8, ist->codecpar->height);
    AV_WB32(p + 12, 24);
    AV_WB32(p + 16, 0);
    AV_WB32(p + 20, pic->size);
    memcpy(p + 24, pic->data, pic->size);

    rc = av_base64_encode(b64, blen, blk, len) != NULL
         ? av_dict_set(&job->a.ost->metadata, "METADATA_BLOCK_PICTURE", b64,
                       AV_DICT_DONT_STRDUP_VAL)
         : AVERROR(EINVAL);

    av_free(blk);

    if (rc < 0) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "cover");
    }

    return VCONV_OK;
}


/*
 * Chapters, moved to the output's clock (start and duration cut them),
 * for the containers that keep them: Matroska, MP4, MOV, M4A.
 */
static int
vconv_metadata_chapters(vconv_job_t *job)
{
    int             rc;
    int64_t         start, end, len;
    unsigned        i;
    AVChapter      *ic, *oc, **list;
    AVRational      us = AV_TIME_BASE_Q;
    const char     *muxer;

    muxer = job->ofmt->oformat->name;

    if (job->ifmt->nb_chapters == 0
        || (strcmp(muxer, "matroska") != 0 && strcmp(muxer, "mp4") != 0
            && strcmp(muxer, "mov") != 0 && strcmp(muxer, "ipod") != 0))
    {
        return VCONV_OK;
    }

    len = job->length > 0 ? job->length : INT64_MAX;

    for (i = 0; i < job->ifmt->nb_chapters; i++) {
        ic = job->ifmt->chapters[i];

        start = av_sat_sub64(av_rescale_q(ic->start, ic->time_base, us),
                             job->offset);
        end = av_sat_sub64(av_rescale_q(ic->end, ic->time_base, us),
                           job->offset);

        if (end <= 0 || start >= len) {
            continue;
        }

        start = start < 0 ? 0 : start;
        end = end > len ? len : end;

        oc = av_mallocz(sizeof(AVChapter));
        if (oc == NULL) {
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "chapter");
        }

        list = av_realloc_array(job->ofmt->chapters,
                                job->ofmt->nb_chapters + 1,
                                sizeof(AVChapter *));
        if (list == NULL) {
            av_free(oc);
            return vconv_job_fail(job, VCONV_E_NOMEM, 0, "chapter");
        }

        /* avformat_free_context() frees the list, the chapters, tags */
        job->ofmt->chapters = list;
        list[job->ofmt->nb_chapters++] = oc;

        oc->id = ic->id;
        oc->time_base = (AVRational) { 1, 1000 };
        oc->start = av_rescale_q(start, us, oc->time_base);
        oc->end = av_rescale_q(end, us, oc->time_base);

        rc = av_dict_copy(&oc->metadata, ic->metadata, 0);
        if (rc < 0) {
            return vconv_job_fail(job, VCONV_E_NOMEM, rc, "chapter");
        }
    }

    return VCONV_OK;
}


/*
 * hdr=keep: HEVC and AV1 carry the mastering display and content light
 * levels in the bitstream (SEI, metadata OBUs), which the decoder hands
 * out with the frames, while the encoder and the muxer's header want
 * them before the first frame.  The first key packet is decoded here by
 * a decoder of its own; the packets read on the way are kept for the
 * packet loop (vconv_metadata_read), so nothing is read twice.
 */
int
vconv_metadata_hdr_peek(vconv_job_t *job, vconv_stream_t *st)
{
    int              rc;
    AVPacket        *pkt;
    AVFrame         *frame;
    AVFrameSideData *sd;
    const AVCodec   *codec;
    AVCodecContext  *dec;

    if (!job->spec->hdr_keep
        || (av_stream_get_side_data(st->ist,
                                    AV_PKT_DATA_MASTERING_DISPLAY_METADATA,
                                    NULL) != NULL
            && av_stream_get_side_data(st->ist,
                                       AV_PKT_DATA_CONTENT_LIGHT_LEVEL,
                                       NULL) != NULL))
    {
        return VCONV_OK;
    }

    codec = st->dec->codec;
    dec = avcodec_alloc_context3(codec);
    frame = av_frame_alloc();

    if (dec == NULL || frame == NULL
        || avcodec_parameters_to_context(dec, st->ist->codecpar) < 0)
    {
        avcodec_free_context(&dec);
        av_frame_free(&frame);
        return vconv_job_fail(job, VCONV_E_NOMEM, 0, "hdr peek");
    }

    /* one thread: frame threads would hold the picture back */
    dec->thread_count = 1;
    dec->pkt_timebase = st->ist->time_base;
    dec->max_pixels = st->dec->max_pixels;

    rc = avcodec_open2(dec, codec, NULL);
    if (rc < 0) {
        av_log(job->ifmt, AV_LOG_WARNING, "hdr peek: decoder: %s\n",
               av_err2str(rc));
    }

    while (rc >= 0 && job->npeeked < VCONV_PEEK_MAX) {
        pkt = av_packet_alloc();
        if (pkt == NULL) {
            rc = AVERROR(ENOMEM);
            break;
        }

        rc = av_read_frame(job->ifmt, pkt);
        if (rc < 0) {
            /* the packet loop meets the same end, or error, again */
            av_packet_free(&pkt);
            break;
        }

        job->peeked[job->npeeked++] = pkt;

        if (pkt->stream_index != st->index
            || !(pkt->flags & AV_PKT_FLAG_KEY))
        {
            continue;
        }

        /* the key packet alone, then drained: its picture comes out */
        if (avcodec_send_packet(dec, pkt) >= 0
            && avcodec_send_packet(dec, NULL) >= 0
            && avcodec_receive_frame(dec, frame) >= 0)
        {
            sd = av_frame_get_side_data(frame,
                                    AV_FRAME_DATA_MASTERING_DISPLAY_METADATA);
            if (sd != NULL) {
                job->hdr_md = av_buffer_ref(sd->buf);
            }

            sd = av_frame_get_side_data(frame,
                                        AV_FRAME_DATA_CONTENT_LIGHT_LEVEL);
            if (sd != NULL) {
                job->hdr_cll = av_buffer_ref(sd->buf);
            }
        }

        break;
    }

    avcodec_free_context(&dec);
    av_frame_free(&frame);

    if (rc == AVERROR(ENOMEM)) {
        return vconv_job_fail(job, VCONV_E_NOMEM, rc, "hdr peek");
    }

    /* no first frame: the output goes without, as before */
    return VCONV_OK;
}


/*
 * The input's HDR10 side data of this type (AV_PKT_DATA_MASTERING_DISPLAY_
 * METADATA, AV_PKT_DATA_CONTENT_LIGHT_LEVEL): the container's, or else
 * the first frame's.
 */
const uint8_t *
vconv_metadata_hdr(vconv_job_t *job, vconv_stream_t *st,
    enum AVPacketSideDataType type, size_t *size)
{
    const uint8_t  *p;
    AVBufferRef    *buf;

    p = av_stream_get_side_data(st->ist, type, size);
    if (p != NULL) {
        return p;
    }

    buf = type == AV_PKT_DATA_MASTERING_DISPLAY_METADATA ? job->hdr_md
          : type == AV_PKT_DATA_CONTENT_LIGHT_LEVEL ? job->hdr_cll : NULL;

    if (buf == NULL) {
        return NULL;
    }

    if (size != NULL) {
        *size = buf->size;
    }

    return buf->data;
}


/* the packet loop's read: the packets the peek took first */
int
vconv_metadata_read(vconv_job_t *job, AVPacket *pkt)
{
    AVPacket  *p;

    if (job->peek_next < job->npeeked) {
        p = job->peeked[job->peek_next];
        job->peeked[job->peek_next++] = NULL;
        av_packet_move_ref(pkt, p);
        av_packet_free(&p);
        return 0;
    }

    return av_read_frame(job->ifmt, pkt);
}


/* after a seek the peeked packets are from the wrong place; at the end */
void
vconv_metadata_unpeek(vconv_job_t *job)
{
    int  i;

    for (i = 0; i < job->npeeked; i++) {
        av_packet_free(&job->peeked[i]);
    }

    job->npeeked = 0;
    job->peek_next = 0;
}


void
vconv_metadata_free(vconv_job_t *job)
{
    vconv_metadata_unpeek(job);
    av_buffer_unref(&job->hdr_md);
    av_buffer_unref(&job->hdr_cll);
}


/*
 * Dolby Vision profile 5 has no backward-compatible base layer: its
 * pictures are IPT-PQ-c2, which libav decodes as if they were YCbCr and
 * shows green and purple.  Refused, unless copied into Matroska, whose
 * muxer keeps the configuration record players need (mp4's writes it
 * only for "unofficial" files).
 */
int
vconv_metadata_dovi(vconv_job_t *job, vconv_stream_t *st)
{
    size_t                                   size;
    const AVDOVIDecoderConfigurationRecord  *dovi;

    dovi = (const AVDOVIDecoderConfigurationRecord *)
               av_stream_get_side_data(st->ist, AV_PKT_DATA_DOVI_CONF, &size);

    if (dovi == NULL || size < sizeof(*dovi) || dovi->dv_profile != 5
        || dovi->dv_bl_signal_compatibility_id != 0)
    {
        return VCONV_OK;
    }

    if (st->copy && strcmp(job->fmt->muxer, "matroska") == 0) {
        return VCONV_OK;
    }

    return vconv_error_set(&job->tc->err, VCONV_E_BAD_PIXEL_FORMAT,
                           "Dolby Vision profile 5 (IPTPQc2 colour, no "
                           "backward-compatible base layer) cannot be "
                           "converted%s", st->copy ? "; it can be copied "
                           "into mkv only" : "");
}
