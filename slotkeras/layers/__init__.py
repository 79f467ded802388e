"""Custom Keras layers: the recurrent cells and layers, the word encodings, the context
features, the CRF and its loss.

Every layer (and loss) a saved model can hold is imported here, so that importing the
package registers it and `model.keras` loads in a process that never built one
(`tests/test_layers.py` checks the list against every registered class)."""

from slotkeras.layers.crf import CRF, CRFLoss
from slotkeras.layers.fused_lstm import FusedLSTM
from slotkeras.layers.hashed_word_embedding import HashedWordEmbedding
from slotkeras.layers.jordan_rnn import JordanRNN, JordanRNNCell
from slotkeras.layers.letter_trigram_hashing import LetterTrigramHashing
from slotkeras.layers.masked_pooling import MaskedPooling
from slotkeras.layers.neighbour_pairs import NeighbourPairEmbedding
from slotkeras.layers.peephole_lstm import PeepholeLSTM, PeepholeLSTMCell
from slotkeras.layers.token_featurizer import TokenFeaturizer
from slotkeras.layers.trigram_cnn import TrigramCNN
from slotkeras.layers.utterance_context import BroadcastToTokens, PaddingMask

__all__ = [
    "CRF",
    "CRFLoss",
    "BroadcastToTokens",
    "FusedLSTM",
    "HashedWordEmbedding",
    "JordanRNN",
    "JordanRNNCell",
    "LetterTrigramHashing",
    "MaskedPooling",
    "NeighbourPairEmbedding",
    "PaddingMask",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "TokenFeaturizer",
    "TrigramCNN",
]
