"""AGE: attention-based gait encodings (Rao et al., IJCAI 2020, "Self-Supervised Gait Encoding with
Locality-Aware Attention for Person Re-Identification"; authors' code: github.com/Kali-Hac/SGE-LA).

Why this shape: the paper learns gait without labels by asking a sequence-to-sequence model to
reconstruct a skeleton window *in reverse order*; the decoder's Luong attention over the encoder
states, pushed towards temporally local alignments (the locality-aware loss, see
``engines.train.age``), yields per-step context vectors, and those context vectors are the gait
encoding (AGE). Each coordinate axis gets its own model (the authors train x, y and z separately,
each step's input being the 20 joint coordinates of that axis); the three encodings are
concatenated.

Details taken from the authors' TensorFlow code (``train.py``) where it is more precise than the
paper:

- 2-layer LSTM encoder and decoder, 256 units; the decoder starts from the encoder's final state.
- Luong "general" attention: score = h_dec . (W_a h_enc), softmax over source steps; the context is
  the alignment-weighted sum of the raw encoder outputs.
- ``AttentionWrapper`` semantics: attentional state = W_c [h_dec; context] (linear, no bias, no tanh),
  a linear layer maps it to the 20 coordinates, and it is fed back to the decoder at the next step
  (input feeding; zeros at the first step).
- Decoder input: the code's ``process_decoder_input`` prepends f zero frames (not one), so the
  training helper reads only zeros: in practice the decoder sees no target frames at all. That is the
  default here (``teacher_forcing=False``; the zero input is omitted since it contributes nothing).
  ``teacher_forcing=True`` gives what the paper and the code's comment describe: the previous
  reversed frame, zeros first. Either way the target is the reversed input, so inference needs
  nothing but the window itself.
- Encoding: the code takes the context vectors of every decoder step (manner "ap" scores each step
  separately and averages the predictions); our contract wants one vector per window, so the
  context vectors are averaged over the f steps: D = 3 x hidden = 768. Not in the paper: the
  encoding is then PCA-whitened with statistics of the training windows (``whiten_eps``, see
  ``engines.models.whiten``), chosen on the validation split of the training walks.
- Initialisation as in the code: LSTM weights uniform(-0.1, 0.1), output layer truncated normal
  (std 0.1), attention layers Glorot uniform; TensorFlow's LSTM forget-gate bias of 1 is an initial
  bias here.

Input normalisation (inside the module, per the encoder contract): each frame is centred on its
HipCenter. The authors feed pre-processed dataset files whose normalisation their code does not show.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.models.preprocess import RootCentre
from engines.models.whiten import Whitening

NUM_JOINTS = 20
AXES = ("x", "y", "z")


class AxisSeq2Seq(nn.Module):
    """One axis: LSTM encoder, attentional LSTM decoder reconstructing [N, f, 20] in reverse order."""

    def __init__(self, f: int, hidden: int = 256, layers: int = 2, teacher_forcing: bool = False) -> None:
        super().__init__()
        self.f = f
        self.hidden = hidden
        self.teacher_forcing = teacher_forcing
        self.encoder = nn.LSTM(NUM_JOINTS, hidden, num_layers=layers, batch_first=True)
        decoder_in = hidden + (NUM_JOINTS if teacher_forcing else 0)
        # Stacked cells stepped one frame at a time: about twice as fast on CPU as nn.LSTM on length-1 inputs.
        self.decoder = nn.ModuleList(nn.LSTMCell(decoder_in if i == 0 else hidden, hidden) for i in range(layers))
        self.score = nn.Linear(hidden, hidden, bias=False)  # Luong "general": W_a
        self.attention = nn.Linear(2 * hidden, hidden, bias=False)  # W_c [h; c]
        self.output = nn.Linear(hidden, NUM_JOINTS)
        self._init_like_authors()

    def _init_like_authors(self) -> None:
        for lstm in (self.encoder, *self.decoder):
            for name, p in lstm.named_parameters():
                if name.startswith("weight"):
                    nn.init.uniform_(p, -0.1, 0.1)
                else:
                    nn.init.zeros_(p)
                if name.startswith("bias_ih"):
                    nn.init.ones_(p[self.hidden : 2 * self.hidden])  # forget gate (PyTorch order i, f, g, o)
        nn.init.xavier_uniform_(self.score.weight)
        nn.init.xavier_uniform_(self.attention.weight)
        nn.init.trunc_normal_(self.output.weight, std=0.1, a=-0.2, b=0.2)
        nn.init.zeros_(self.output.bias)

    def forward(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """seq [N, f, 20] -> reconstruction of seq reversed [N, f, 20], alignments [N, f, f], contexts [N, f, H]."""
        memory, (h, c) = self.encoder(seq)
        state = [(h[i], c[i]) for i in range(len(self.decoder))]  # decoder starts from the encoder's final state
        keys = self.score(memory)  # [N, f, H]
        feed = memory.new_zeros(seq.shape[0], self.hidden)
        previous = self._teacher_inputs(seq) if self.teacher_forcing else None
        outputs, alignments, contexts = [], [], []
        for t in range(self.f):
            step_in = feed if previous is None else torch.cat([previous[:, t], feed], dim=1)
            query = self._decoder_step(step_in, state)  # [N, H]
            align = torch.softmax(torch.bmm(keys, query.unsqueeze(2)).squeeze(2), dim=1)  # [N, f]
            context = torch.bmm(align.unsqueeze(1), memory).squeeze(1)  # [N, H]
            feed = self.attention(torch.cat([query, context], dim=1))
            outputs.append(self.output(feed))
            alignments.append(align)
            contexts.append(context)
        return torch.stack(outputs, 1), torch.stack(alignments, 1), torch.stack(contexts, 1)

    def _decoder_step(self, step_in: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Advance the stacked decoder cells one step (updating ``state`` in place); returns the top output."""
        x = step_in
        for i, cell in enumerate(self.decoder):
            state[i] = cell(x, state[i])
            x = state[i][0]
        return x

    @staticmethod
    def _teacher_inputs(seq: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for teacher forcing: (0, r_1, ..., r_{f-1}) with r = seq reversed in time."""
        reversed_seq = torch.flip(seq, dims=[1])
        return torch.cat([torch.zeros_like(reversed_seq[:, :1]), reversed_seq[:, :-1]], dim=1)


class AGEEncoder(nn.Module):
    """Encoder contract: canonical windows [N, f, 20, 3] in metres -> AGE embeddings [N, 3 * hidden]."""

    method = "age"

    def __init__(
        self,
        f: int,
        hidden: int = 256,
        layers: int = 2,
        teacher_forcing: bool = False,
        whiten_eps: float | None = None,
    ) -> None:
        super().__init__()
        self.f = f
        self.embedding_dim = len(AXES) * hidden
        self.preprocess = RootCentre()
        self.axes = nn.ModuleList(AxisSeq2Seq(f, hidden, layers, teacher_forcing) for _ in AXES)
        # Fitted on the training windows after the last epoch (see AgeMethod.finalise); None: raw contexts.
        self.whiten = Whitening(self.embedding_dim, whiten_eps) if whiten_eps is not None else None

    def run(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All three axis models: reconstruction and target [N, f, 20, 3], alignments [N, 3, f, f],
        contexts [N, 3, f, H]. The target is the root-centred window in reverse time order."""
        x = self.preprocess(windows)
        results = [model(x[..., i]) for i, model in enumerate(self.axes)]
        reconstruction = torch.stack([r[0] for r in results], dim=3)
        alignments = torch.stack([r[1] for r in results], dim=1)
        contexts = torch.stack([r[2] for r in results], dim=1)
        return reconstruction, torch.flip(x, dims=[1]), alignments, contexts

    def contexts(self, windows: torch.Tensor) -> torch.Tensor:
        """Per-axis context vectors averaged over the f decoder steps, concatenated x, y, z: [N, 3 * hidden]."""
        x = self.preprocess(windows)
        return torch.cat([model(x[..., i])[2].mean(dim=1) for i, model in enumerate(self.axes)], dim=1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """The AGE encoding, whitened with the training windows' statistics when the model has a whitening."""
        encoding = self.contexts(windows)
        return self.whiten(encoding) if self.whiten is not None else encoding


class AGEModel(nn.Module):
    """Training model: reverse reconstruction with attention; ``encoder`` is the deployable part."""

    def __init__(self, encoder: AGEEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """windows [N, f, 20, 3] -> (reconstruction [N, f, 20, 3], target [N, f, 20, 3], alignments [N, 3, f, f])."""
        reconstruction, target, alignments, _ = self.encoder.run(windows)
        return reconstruction, target, alignments
