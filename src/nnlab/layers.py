"""Batch normalization computed by TensorFlow's fused kernel when Keras runs on TensorFlow.

Keras 3 normalizes a batch with separate operations (mean, variance, subtract, scale, shift,
and as many again for the gradients), each a pass over the layer's input. TensorFlow's fused
kernel does the same arithmetic in one pass forward and one backward; on the study's CNN it
trains about 1.8 times as fast (`bench/training.py` measures it). The statistics, trainable
weights, moving-average updates and saved configuration are Keras's own; other backends and
the cases the fused kernel does not cover run Keras's computation unchanged.
"""

from __future__ import annotations

import keras
from keras import layers

# TensorFlow's fused kernel raises any smaller epsilon to this value.
FUSED_MIN_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="nnlab")
class FusedBatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` over the last axis, fused on TensorFlow."""

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        return self._fused_call(inputs, training=bool(training and self.trainable))

    def _fusable(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and rank >= 2
            and self.axis % rank == rank - 1
            and keras.backend.standardize_dtype(inputs.dtype) == "float32"
            and self.epsilon >= FUSED_MIN_EPSILON
        )

    def _fused_call(self, inputs, training: bool):
        import tensorflow as tf

        channels = inputs.shape[-1]
        # The kernel wants NHWC; other ranks become N x 1 x 1 x C with the same statistics.
        images = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
        scale = self.gamma.value if self.scale else tf.ones([channels], inputs.dtype)
        offset = self.beta.value if self.center else tf.zeros([channels], inputs.dtype)
        if training:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                images, scale, offset, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the unbiased variance; Keras averages the biased one.
            count = tf.cast(tf.size(images) // channels, variance.dtype)
            variance = variance * (count - 1.0) / count
            self.moving_mean.assign(
                self.moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                images,
                scale,
                offset,
                mean=self.moving_mean.value,
                variance=self.moving_variance.value,
                epsilon=self.epsilon,
                is_training=False,
            )
        return tf.reshape(outputs, tf.shape(inputs))
