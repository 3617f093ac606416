/*
 * vconv: the spare child's warm-up of the libraries
 * (tools/vconv_sandbox_warm.c).
 */

#ifndef _VCONV_SANDBOX_WARM_H_INCLUDED_
#define _VCONV_SANDBOX_WARM_H_INCLUDED_


/* the common codecs' one-time setup, in the spare before its job */
void vconv_sandbox_warm(void);


#endif /* _VCONV_SANDBOX_WARM_H_INCLUDED_ */
