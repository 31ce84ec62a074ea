#pragma once
/// \file
/// Everything in tapegrad::optim: the optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), the learning-rate
/// schedulers and gradient clipping.

#include <tapegrad/optim/optimizer.hpp>
#include <tapegrad/optim/sgd.hpp>
#include <tapegrad/optim/adam.hpp>
#include <tapegrad/optim/rmsprop.hpp>
#include <tapegrad/optim/adagrad.hpp>
#include <tapegrad/optim/lr_scheduler.hpp>
#include <tapegrad/optim/clip_grad.hpp>
