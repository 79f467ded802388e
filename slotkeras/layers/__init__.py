"""Custom Keras layers; the recurrent cells and layers are exported here."""

from slotkeras.layers.fused_lstm import FusedLSTM
from slotkeras.layers.jordan_rnn import JordanRNN, JordanRNNCell
from slotkeras.layers.peephole_lstm import PeepholeLSTM, PeepholeLSTMCell

__all__ = ["FusedLSTM", "JordanRNN", "JordanRNNCell", "PeepholeLSTM", "PeepholeLSTMCell"]
