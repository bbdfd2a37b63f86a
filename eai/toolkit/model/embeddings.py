"""Starting rows of the tokens `eai model init` adds to the language model.

Why not transformers' `mean_resizing`: it draws the new rows from N(mean, 1e-9 x covariance)
of the old rows, so every added token starts at the same vector (their spread was 3e-6 on
SmolLM2, against 0.1 between real tokens). The language model then cannot tell `<st_3>` from
`<st_40>` or one `<emb_K>` from another until training has pushed the rows apart, and LoRA
learning rates move them far too slowly for that: after finetuning on the Bandai-Namco training
set their spread was still 0.0008, and the finetuned model could not read the motion it was
shown (BENCHMARKS.md, section 7).

So every added row starts as something:
- a token that has words starts at the mean of the base's embeddings of those words: a
  semantic token `<sem_root_speed_mean_high>` at "root speed mean high", a dataset tag at
  "dataset NAME", a marker at what it marks (`</emotion>`: "emotion label ends"); so the
  model reads them roughly as what they say, and the markers it has to write (`</emotion>`,
  `</explanation>`) get ordinary scores as output tokens (a tied head shares these rows);
- a clip-embedding code `<emb_K>` starts at the emotion words its code centre stands for,
  weighted by the skeleton classifier's probabilities of that centre (`code_emotions`), plus a
  little of a drawn row (codes that lean to one emotion are still different clusters): the code
  is a label-trained summary of the clip, and this says which emotions it leans to;
- a motion code `<st_K>` is drawn from N(mean, covariance) of the real rows: as distinct as
  real tokens, with no meaning yet (the codebook is learned without words);
- an untied output head gets the mean of its real rows for every added token.
Only the added rows change: for text without added tokens the scores over the base vocabulary
are exactly the base's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SEMANTIC_PREFIX, DATASET_PREFIX = "<sem_", "<ds_"
COVARIANCE_ROWS = 20_000  # rows sampled to estimate the covariance (a 150k x 4k matrix is slow)
MIN_CODE_PROBABILITY = 0.05  # emotions below this share of a code centre are left out of it
# codes leaning to the same emotion are still different clusters of movement: a quarter of a
# drawn row's spread keeps them apart
CODE_SPREAD = 0.25

# markers: several words each, so that no row equals one real token's row
MARKER_WORDS = {
    "<motion>": "motion tokens begin", "</motion>": "motion tokens end",
    "<t>": "next time step", "<semantic>": "movement summary begins",
    "</semantic>": "movement summary ends", "<emotion>": "emotion label begins",
    "</emotion>": "emotion label ends", "<explanation>": "explanation begins",
    "</explanation>": "explanation ends",
}

Phrases = Sequence[tuple[str, float]]  # (words, weight)


def _words(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip()


def token_words(token: str) -> str | None:
    """The words an added token stands for on its own ("<sem_root_speed_mean_high>" -> "root
    speed mean high", "<ds_bandai-namco-1>" -> "dataset bandai namco 1"); None for codes."""
    if token in MARKER_WORDS:
        return MARKER_WORDS[token]
    if token.startswith(SEMANTIC_PREFIX) and token.endswith(">"):
        return _words(token[len(SEMANTIC_PREFIX):-1]) or None
    if token.startswith(DATASET_PREFIX) and token.endswith(">"):
        return "dataset " + _words(token[len(DATASET_PREFIX):-1])
    return None


def code_phrases(probabilities, emotions: Sequence[str]) -> list[Phrases]:
    """Per code centre, its emotions as (words, weight): the classifier's probabilities of the
    centre, those under MIN_CODE_PROBABILITY left out, renormalised."""
    out = []
    for row in probabilities:
        keep = [(_words(e), float(p)) for e, p in zip(emotions, row) if p >= MIN_CODE_PROBABILITY]
        if not keep:  # a flat centre: all of them
            keep = [(_words(e), float(p)) for e, p in zip(emotions, row)]
        total = sum(p for _, p in keep)
        out.append([(w, p / total) for w, p in keep])
    return out


def _draw_like(rows, count: int, generator):
    """`count` vectors from the normal distribution with the mean and covariance of `rows`."""
    import torch

    rows = rows.float()
    if rows.shape[0] > COVARIANCE_ROWS:
        rows = rows[torch.randperm(rows.shape[0], generator=generator)[:COVARIANCE_ROWS]]
    mean = rows.mean(0)
    centred = rows - mean
    cov = centred.T @ centred / max(1, rows.shape[0] - 1)
    # a little jitter keeps the factorisation defined for rank-deficient tables
    jitter = 1e-6 * cov.diagonal().mean().clamp(min=1e-12)
    chol = torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0]))
    return mean + torch.randn(count, cov.shape[0], generator=generator) @ chol.T


def init_added_rows(model, tokenizer, tokens: Sequence[str], ids: Sequence[int], n_real: int,
                    seed: int, phrases: Mapping[str, Phrases] | None = None) -> dict[str, int]:
    """Set the embedding rows of the added `tokens` (at `ids`) as the module doc says. n_real:
    the number of real (base) tokens, whose rows are the reference; phrases: weighted words of
    tokens that have no words of their own (the `<emb_K>` codes). Returns how many rows started
    from words and how many were drawn."""
    import torch

    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb
    generator = torch.Generator().manual_seed(seed)
    phrases = dict(phrases or {})
    with torch.no_grad():
        real = emb[:n_real].float()
        rows = _draw_like(real, len(ids), generator)
        mean = real.mean(0)

        def words_row(words: str):
            ids_ = [i for i in tokenizer(" " + words, add_special_tokens=False)["input_ids"]
                    if i < n_real]
            return real[ids_].mean(0) if ids_ else None

        from_words = 0
        for k, token in enumerate(tokens):
            own = token_words(token)
            weighted = [(own, 1.0)] if own else phrases.get(token)
            if not weighted:
                continue
            parts = [(words_row(w), p) for w, p in weighted]
            parts = [(r, p) for r, p in parts if r is not None]
            if parts:
                spread = 0.0 if own else CODE_SPREAD * (rows[k] - mean)
                rows[k] = sum(r * p for r, p in parts) / sum(p for _, p in parts) + spread
                from_words += 1
        index = torch.tensor(list(ids), dtype=torch.long)
        emb[index] = rows.to(emb.dtype)
        if out is not None and not tied:
            out.weight[index] = out.weight[:n_real].float().mean(0).to(out.weight.dtype)
    return {"rows_from_words": from_words, "rows_drawn": len(ids) - from_words}
