/*
 * vconv: checks on decoded frames at the pipeline's boundaries (decoder
 * to filter graph, graph to encoder).  Decoders hand on what damaged
 * input makes of them, and encoders trust what they get: libmp3lame
 * aborts the process on a float sample far outside +-1.0.
 */

#ifndef _VCONV_FRAME_H_INCLUDED_
#define _VCONV_FRAME_H_INCLUDED_


#include <libavutil/frame.h>


/* the bounds of what a real file has; past them a resampler needs GBs */
#define VCONV_AUDIO_MAX_RATE      768000
/* swresample's SWR_CH_MAX (not in its public header), and pan's bound */
#define VCONV_AUDIO_MAX_CHANNELS  64


/*
 * Makes the samples of a float or double audio frame (planar or packed)
 * finite and within [-1.0, 1.0]: NaN and infinities become 0, the rest
 * is clamped.  Integer formats are bounded by their type and left alone.
 * The frame is made writable only when a sample must change.  Returns
 * how many samples changed, or a negative AVERROR when the frame's
 * planes are missing or cannot be made writable.
 */
int64_t vconv_frame_clamp_audio(AVFrame *frame);

/*
 * 0 when the audio frame is one the pipeline can take: a known sample
 * format, a rate and channel count within the bounds above, samples,
 * and a plane for each channel; else a negative AVERROR.
 */
int vconv_frame_check_audio(const AVFrame *frame);

/*
 * 0 when the video frame is a picture of its own width, height and
 * format whose planes are all there and whose line sizes cover the
 * width; else a negative AVERROR.
 */
int vconv_frame_check_video(const AVFrame *frame);


#endif /* _VCONV_FRAME_H_INCLUDED_ */
