/*
 * vconv-sidedata: a test helper.  Remuxes INPUT into OUTPUT (every stream
 * copied) and gives the first video stream the side data named on the
 * command line, as a container would hold it:
 *
 *   dovi=PROFILE,LEVEL,COMPAT    a Dolby Vision configuration record
 *                                (mkv BlockAdditionMapping, mp4 dvcC)
 *   mdcv=RX,RY,GX,GY,BX,BY,WX,WY,MAX,MIN
 *                                mastering display, chromaticities in
 *                                1/50000, luminance in 1/10000 cd/m2
 *   cll=MAXCLL,MAXFALL           content light level
 *
 * The Debian ffmpeg CLI can write none of these from the command line:
 * the tests make their HDR and Dolby Vision inputs with it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dovi_meta.h>
#include <libavutil/mastering_display_metadata.h>


static int vconv_sd_add(AVStream *st, const char *arg);


int
main(int argc, char **argv)
{
    int               rc, i, vi;
    unsigned          s;
    AVPacket         *pkt;
    AVStream         *ist, *ost;
    AVFormatContext  *in, *out;

    if (argc < 3) {
        fprintf(stderr, "usage: vconv-sidedata INPUT OUTPUT "
                "[dovi=P,L,C] [mdcv=...] [cll=C,F]\n");
        return 2;
    }

    in = NULL;
    out = NULL;

    if (avformat_open_input(&in, argv[1], NULL, NULL) < 0
        || avformat_find_stream_info(in, NULL) < 0)
    {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }

    if (avformat_alloc_output_context2(&out, NULL, NULL, argv[2]) < 0) {
        fprintf(stderr, "no muxer for %s\n", argv[2]);
        return 1;
    }

    vi = -1;

    for (s = 0; s < in->nb_streams; s++) {
        ist = in->streams[s];
        ost = avformat_new_stream(out, NULL);
        if (ost == NULL
            || avcodec_parameters_copy(ost->codecpar, ist->codecpar) < 0)
        {
            return 1;
        }

        ost->codecpar->codec_tag = 0;
        ost->time_base = ist->time_base;
        av_dict_copy(&ost->metadata, ist->metadata, 0);

        if (vi < 0 && ist->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
            vi = (int) s;

            for (i = 3; i < argc; i++) {
                if (vconv_sd_add(ost, argv[i]) != 0) {
                    fprintf(stderr, "bad side data: %s\n", argv[i]);
                    return 2;
                }
            }
        }
    }

    if (avio_open(&out->pb, argv[2], AVIO_FLAG_WRITE) < 0) {
        fprintf(stderr, "cannot write %s\n", argv[2]);
        return 1;
    }

    /* mp4's dvcC is "unofficial" to libav 5.1; STRICT=1: as vconv does */
    out->strict_std_compliance = getenv("STRICT") ? FF_COMPLIANCE_NORMAL
                                                  : FF_COMPLIANCE_EXPERIMENTAL;

    if (avformat_write_header(out, NULL) < 0) {
        fprintf(stderr, "header refused\n");
        return 1;
    }

    pkt = av_packet_alloc();

    while (av_read_frame(in, pkt) >= 0) {
        ist = in->streams[pkt->stream_index];
        ost = out->streams[pkt->stream_index];
        av_packet_rescale_ts(pkt, ist->time_base, ost->time_base);
        pkt->pos = -1;

        rc = av_interleaved_write_frame(out, pkt);
        if (rc < 0) {
            fprintf(stderr, "write: %s\n", av_err2str(rc));
            return 1;
        }
    }

    av_write_trailer(out);
    avio_closep(&out->pb);
    av_packet_free(&pkt);
    avformat_free_context(out);
    avformat_close_input(&in);

    return 0;
}


static int
vconv_sd_add(AVStream *st, const char *arg)
{
    int                                 v[10], n;
    size_t                              size;
    uint8_t                            *sd;
    AVContentLightMetadata             *cll;
    AVMasteringDisplayMetadata         *md;
    AVDOVIDecoderConfigurationRecord   *dovi;

    if (strncmp(arg, "dovi=", 5) == 0) {
        if (sscanf(arg + 5, "%d,%d,%d", &v[0], &v[1], &v[2]) != 3) {
            return -1;
        }

        dovi = av_dovi_alloc(&size);
        if (dovi == NULL) {
            return -1;
        }

        dovi->dv_version_major = 1;
        dovi->dv_version_minor = 0;
        dovi->dv_profile = v[0];
        dovi->dv_level = v[1];
        dovi->rpu_present_flag = 1;
        dovi->el_present_flag = 0;
        dovi->bl_present_flag = 1;
        dovi->dv_bl_signal_compatibility_id = v[2];

        return av_stream_add_side_data(st, AV_PKT_DATA_DOVI_CONF,
                                       (uint8_t *) dovi, size);
    }

    if (strncmp(arg, "mdcv=", 5) == 0) {
        n = sscanf(arg + 5, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
        if (n != 10) {
            return -1;
        }

        sd = av_stream_new_side_data(st,
                                     AV_PKT_DATA_MASTERING_DISPLAY_METADATA,
                                     sizeof(AVMasteringDisplayMetadata));
        if (sd == NULL) {
            return -1;
        }

        md = (AVMasteringDisplayMetadata *) sd;
        memset(md, 0, sizeof(*md));

        for (n = 0; n < 3; n++) {
            md->display_primaries[n][0] = av_make_q(v[2 * n], 50000);
            md->display_primaries[n][1] = av_make_q(v[2 * n + 1], 50000);
        }

        md->white_point[0] = av_make_q(v[6], 50000);
        md->white_point[1] = av_make_q(v[7], 50000);
        md->max_luminance = av_make_q(v[8], 10000);
        md->min_luminance = av_make_q(v[9], 10000);
        md->has_primaries = 1;
        md->has_luminance = 1;

        return 0;
    }

    if (strncmp(arg, "cll=", 4) == 0) {
        if (sscanf(arg + 4, "%d,%d", &v[0], &v[1]) != 2) {
            return -1;
        }

        sd = av_stream_new_side_data(st, AV_PKT_DATA_CONTENT_LIGHT_LEVEL,
                                     sizeof(AVContentLightMetadata));
        if (sd == NULL) {
            return -1;
        }

        cll = (AVContentLightMetadata *) sd;
        cll->MaxCLL = v[0];
        cll->MaxFALL = v[1];

        return 0;
    }

    return -1;
}
