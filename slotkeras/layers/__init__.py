"""Custom Keras layers; the recurrent cells and layers are exported here.

Every layer a saved model can hold is imported here, so that importing the package
registers it and `model.keras` loads in a process that never built one."""

from slotkeras.layers.fused_lstm import FusedLSTM
from slotkeras.layers.jordan_rnn import JordanRNN, JordanRNNCell
from slotkeras.layers.neighbour_pairs import NeighbourPairEmbedding
from slotkeras.layers.peephole_lstm import PeepholeLSTM, PeepholeLSTMCell
from slotkeras.layers.trigram_cnn import TrigramCNN

__all__ = [
    "FusedLSTM",
    "JordanRNN",
    "JordanRNNCell",
    "NeighbourPairEmbedding",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "TrigramCNN",
]
