/* heed.h -- the one header users include.
 *
 *   #include <heed/heed.h> // cc prog.c $(pkg-config --cflags --libs heed)
 *
 * heed is a C11 library of attention modules (SE, CBAM, RAM) for
 * convolutional neural networks, with the CNN core they stand on: float32
 * NCHW tensors and layers with forward and backward passes. Each header
 * below opens with a usage example and states shapes, ownership and errors.
 */
#ifndef HEED_H
#define HEED_H

#include "error.h"
#include "tensor.h"
#include "rng.h"
#include "params.h"
#include "layer.h"
#include "gemm.h"
#include "conv2d.h"
#include "pool2d.h"
#include "linear.h"
#include "batchnorm.h"
#include "activation.h"
#include "elementwise.h"
#include "loss.h"
#include "dropout.h"
#include "optim.h"
#include "schedule.h"
#include "image.h"
#include "overlay.h"
#include "data.h"
#include "seq.h"
#include "net.h"
#include "model.h"
#include "model_input.h"
#include "gradcam.h"
#include "se.h"
#include "cbam.h"
#include "eca.h"
#include "ram.h"

#endif
