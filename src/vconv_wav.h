/*
 * vconv: WAV outputs that say their channel layout (issue 23).
 */

#ifndef _VCONV_WAV_H_INCLUDED_
#define _VCONV_WAV_H_INCLUDED_


#include <stdint.h>


/*
 * Turns the plain WAVEFORMAT header of a finished mono or stereo PCM WAV
 * in fd (size bytes) into a WAVE_FORMAT_EXTENSIBLE one carrying mask,
 * the channel mask; *size grows by what the header grew.  A file of any
 * other shape is left as it is.  Returns 0, or a negative AVERROR.
 */
int vconv_wav_extensible(int fd, uint64_t mask, int64_t *size);


#endif /* _VCONV_WAV_H_INCLUDED_ */
