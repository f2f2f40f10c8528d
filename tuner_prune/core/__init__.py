"""What every stage may use: the doors to tf_keras/tfmot and keras-tuner, the errors."""
