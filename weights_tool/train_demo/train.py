#!/usr/bin/python3
"""train — train owlet's demo model (a tiny mPLUG-Owl2) on shapes.py and write an HF-style folder.

    /usr/bin/python3 weights_tool/train_demo/train.py --out DIR [--tokenizer DIR/tokenizer.model]
        [--steps N] [--images-per-step N] [--lr X] [--threads N] [--seed S] [key=value ...]

key=value overrides the model config (dotted paths as in config.json, e.g. hidden_size=256
visual_config.visual_model.num_hidden_layers=2); `image_size` is a shortcut that also sets
preprocessor size/crop and the abstractor grid.

Training: every step draws `images-per-step` fresh items (shapes.TRAIN_SEED, indices
step*n ...), each with its 5 question types, so one batch = 5 x images sequences. The prompt is
exactly the chat format `USER: <|image|>{q} ASSISTANT:` tokenised the reference way
(tests/reference/sp_ref.py: split on <|image|>, -200, only the first BOS); the target is
sp.encode(answer) (dummy prefix: "▁Red", ".") followed by </s>; the loss is next-token
cross-entropy on the answer tokens (incl. </s>) only. Images go through the reference
preprocessing (owl2_ref.preprocess_image, mode "stretch": square canvas -> PIL bicubic to
image_size, CLIP mean/std), i.e. the same pixels the engine computes from the PNG.

Output folder (same schema and key names as tests/fixtures/oracle_a): config.json,
preprocessor_config.json, generation_config.json, tokenizer.model, tokenizer_config.json,
special_tokens_map.json, pytorch_model.bin (torch.save of the float32 state_dict) and
model.safetensors (same tensors; lets owl2_ref / make_goldens.py read it), train_log.json.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
ORACLE = os.path.join(ROOT, "tests", "fixtures", "oracle_a")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import shapes  # noqa: E402
from model import ref  # noqa: E402
import sp_ref  # noqa: E402  (tests/reference is on sys.path via model)
from make_checkpoint import save_safetensors  # noqa: E402

# proposed demo configuration (see MODEL_CARD.md); every value can be overridden on the command line
DEMO = {
    "image_size": 224,
    "hidden_size": 192, "intermediate_size": 512, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 1500,
    "visual_config.visual_model.hidden_size": 128,
    "visual_config.visual_model.intermediate_size": 512,
    "visual_config.visual_model.num_hidden_layers": 3,
    "visual_config.visual_model.num_attention_heads": 4,
    "visual_config.visual_abstractor.hidden_size": 128,
    "visual_config.visual_abstractor.encoder_hidden_size": 128,
    "visual_config.visual_abstractor.intermediate_size": 352,
    "visual_config.visual_abstractor.num_hidden_layers": 2,
    "visual_config.visual_abstractor.num_attention_heads": 4,
    "visual_config.visual_abstractor.num_learnable_queries": 16,
}


def _set(cfg, path, value):
    *head, last = path.split(".")
    node = cfg
    for h in head:
        node = node[h]
    if last not in node:
        raise KeyError(f"config: no key {path!r}")
    node[last] = value


def _parse(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def make_config(overrides):
    """(config.json dict, preprocessor_config.json dict) from oracle A's files + DEMO + overrides."""
    with open(os.path.join(ORACLE, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(ORACLE, "preprocessor_config.json")) as f:
        pre = json.load(f)
    cfg["image_aspect_ratio"] = "stretch"   # owlet tools: stretch unless "pad"; demo images are square
    vals = dict(DEMO)
    vals.update(overrides)
    image_size = int(vals.pop("image_size"))
    for k, v in vals.items():
        _set(cfg, k, v)
    vm = cfg["visual_config"]["visual_model"]
    vm["image_size"] = image_size
    if image_size % vm["patch_size"]:
        raise ValueError(f"image_size {image_size} not a multiple of patch_size {vm['patch_size']}")
    cfg["visual_config"]["visual_abstractor"]["grid_size"] = image_size // vm["patch_size"]
    pre["size"] = pre["crop_size"] = image_size
    return cfg, pre


EMB_STD = float(os.environ.get("EMB_STD", "0.02"))
POS_STD = float(os.environ.get("POS_STD", "0.2"))   # the vision tower's learned position table


def init_weights(net, seed):
    """Gain-1 init: Linear/conv weights normal(0, 1/sqrt(fan_in)), biases 0, norms 1, token
    embeddings normal(0, 1), learned tables (cls, positions, queries, vit_eos) normal(0, 0.02).
    (HF's flat 0.02 is ~4x too small at these widths: each linear then shrinks its input ~4x,
    the image signal reaching the LLM at init is ~1% of the query content, and training sits on
    the "answer prior" plateau for hundreds of steps.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0.0, fan_in ** -0.5, generator=g)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, (torch.nn.LayerNorm, M.RMSNorm)):
                mod.weight.fill_(1.0)
                if getattr(mod, "bias", None) is not None:
                    mod.bias.zero_()
            elif isinstance(mod, torch.nn.Embedding):
                mod.weight.normal_(0.0, EMB_STD, generator=g)
        for p in (net.model.vision_model.embeddings.cls_token, net.model.visual_abstractor.query_embeds,
                  net.model.visual_abstractor.vit_eos):
            p.normal_(0.0, 0.02, generator=g)
        net.model.vision_model.embeddings.position_embedding.normal_(0.0, POS_STD, generator=g)


class Encoder:
    """Turns (question, answer) into token ids the reference way."""

    def __init__(self, tokenizer_model):
        self.tok = sp_ref.Tokenizer(tokenizer_model)

    def prompt(self, question):
        return self.tok.encode_prompt(ref.render_single_turn(question))

    def answer(self, answer):
        return self.tok.sp.encode(answer) + [2]

    def decode(self, ids):
        ids = [i for i in ids if i > 2]
        return self.tok.sp.decode(ids).strip()


def patch_targets(item, image_size, patch):
    """Auxiliary targets of one item: (shape [g*g], colour [g*g]) per vision patch -- the class
    + 1 of the object covering most of the patch when it covers >= 10% of it, else 0 -- and
    (shape [9], colour [9]) per 3x3 cell, same coding, from the object list."""
    lab = np.asarray(item["label"].resize((image_size, image_size), Image.NEAREST))
    g = image_size // patch
    n_obj = len(item["label_classes"])
    hot = (lab[..., None] == np.arange(1, n_obj + 1)).reshape(g, patch, g, patch, n_obj).sum((1, 3))
    best = hot.argmax(-1)
    cover = hot.max(-1) >= 0.1 * patch * patch
    cls = np.array(item["label_classes"]).reshape(-1, 2) + 1
    ps = np.where(cover, cls[best, 0], 0).reshape(-1)
    pc = np.where(cover, cls[best, 1], 0).reshape(-1)
    cs, cc = np.zeros(9, np.int64), np.zeros(9, np.int64)
    for o in item["objects"]:
        cs[o["row"] * 3 + o["col"]] = shapes.SHAPES.index(o["shape"]) + 1
        cc[o["row"] * 3 + o["col"]] = shapes.COLOUR_NAMES.index(o["colour"]) + 1
    return ps, pc, cs, cc


class AuxHeads(torch.nn.Module):
    """Training-only heads (not saved): what is under each vision patch (from the vision tower's
    output) and what is in each 3x3 cell (from all the abstractor's visual tokens). They give the
    vision tower and the abstractor a direct signal; the language loss alone reaches them only
    through the LLM and sits on the answer-prior plateau for thousands of steps."""

    def __init__(self, dv, d_llm, n_q):
        super().__init__()
        ns, nc = len(shapes.SHAPES) + 1, len(shapes.COLOUR_NAMES) + 1
        self.ns, self.nc = ns, nc
        self.patch = torch.nn.Linear(dv, ns + nc)
        self.cells = torch.nn.Linear(n_q * d_llm, 9 * (ns + nc))

    def logits(self, v, img):
        """-> per patch [B, g*g, ns+nc] (cls token dropped), per cell [B, 9, ns+nc]"""
        return self.patch(v[:, 1:]), self.cells(img[:, :-1].reshape(img.shape[0], -1)).view(img.shape[0], 9, -1)

    def loss(self, v, img, aux):
        ps, pc, cs, cc = aux
        p, c = self.logits(v, img)
        ce = F.cross_entropy
        # shape on object patches / occupied cells only: the colour targets already say "nothing
        # here", and the background (most patches) would drown the shape signal
        fp, fc = ps.reshape(-1) > 0, cs.reshape(-1) > 0
        return (ce(p[..., :self.ns].reshape(-1, self.ns)[fp], ps.reshape(-1)[fp]) +
                ce(p[..., self.ns:].reshape(-1, self.nc), pc.reshape(-1)) +
                ce(c[..., :self.ns].reshape(-1, self.ns)[fc], cs.reshape(-1)[fc]) +
                ce(c[..., self.ns:].reshape(-1, self.nc), cc.reshape(-1))) / 4


class CountHead(torch.nn.Module):
    """Training-only head (not saved) on all the abstractor's visual tokens: how many objects
    (0 = a "not shapes" picture, else 1-4), and how many of each shape and of each colour (0-4,
    only for pictures of shapes). Counting identical copies is what the language loss alone
    taught worst (MODEL_CARD.md); this asks the visual tokens to carry the counts directly."""

    def __init__(self, d_llm, n_q):
        super().__init__()
        self.ns, self.nc = len(shapes.SHAPES), len(shapes.COLOUR_NAMES)
        self.lin = torch.nn.Linear(n_q * d_llm, 5 + 5 * (self.ns + self.nc))

    def loss(self, v, img, targets):
        """Same call as AuxHeads.loss; the vision tower's output v is not used."""
        total, per = targets                     # [B], [B, ns+nc] (-100 = no target)
        z = self.lin(img[:, :-1].reshape(img.shape[0], -1))
        ce = F.cross_entropy
        return (ce(z[:, :5], total) +
                ce(z[:, 5:].reshape(-1, 5), per.reshape(-1), ignore_index=-100)) / 2


def count_targets(item):
    objs = item["objects"]
    per = np.full(len(shapes.SHAPES) + len(shapes.COLOUR_NAMES), -100, np.int64)
    if not objs:
        return 0, per
    per[:] = 0
    for o in objs:
        per[shapes.SHAPES.index(o["shape"])] += 1
        per[len(shapes.SHAPES) + shapes.COLOUR_NAMES.index(o["colour"])] += 1
    return len(objs), per


# the answer pieces that carry a number ("Two red circles", "A circle", "Three.")
NUMBER_PIECES = ("\u2581One", "\u2581Two", "\u2581Three", "\u2581Four", "\u2581A", "\u2581An", "\u2581a", "\u2581an", "s")


def grow_queries(sd, net, seed):
    """A checkpoint with fewer learned abstractor queries than net (num_learnable_queries=N
    on the command line): the old queries stay first, each new one starts as a copy of old
    query j mod n_old plus a little noise (it differs from its original by its q_pos_embed
    row anyway); the fixed sin-cos tables are net's own."""
    k = "model.visual_abstractor.query_embeds"
    old, new = sd[k], net.state_dict()[k]
    if old.shape == new.shape:
        return
    n_old, n_new = old.shape[1], new.shape[1]
    if n_new < n_old:
        raise SystemExit(f"train: the checkpoint has {n_old} queries, more than the config's {n_new}")
    g = torch.Generator().manual_seed(seed)
    grown = old[:, [j % n_old for j in range(n_new)]].clone()
    grown[:, n_old:] += 0.02 * old.std() * torch.randn(grown[:, n_old:].shape, generator=g)
    sd[k] = grown
    for name, v in net.state_dict().items():
        if name.endswith("q_pos_embed"):
            sd[name] = v.clone()
    print(f"train: abstractor queries {n_old} -> {n_new}", flush=True)


# output projections of a new layer: zero, so the layer starts as the identity (its residual
# branches add nothing) and the grown model computes exactly what the checkpoint did
GROW_ZERO = ("self_attn.o_proj.weight", "mlp.down_proj.weight", "self_attn.dense.weight",
             "self_attn.dense.bias", "mlp.fc2.weight", "mlp.fc2.bias")


def grow_layers(sd, net):
    """A checkpoint with fewer vision or LLM layers than net (vision_config.num_hidden_layers /
    num_hidden_layers on the command line): the old layers keep their places, each new layer
    (after them) takes net's fresh init with its output projections zeroed (GROW_ZERO), so the
    grown model starts with the checkpoint's outputs and the new layers learn from there."""
    added = []
    for name, v in net.state_dict().items():
        if name in sd:
            continue
        if ".layers." not in name:
            raise SystemExit(f"train: {name} is missing from the checkpoint and is not a new layer's")
        sd[name] = torch.zeros_like(v) if name.endswith(GROW_ZERO) else v.clone()
        added.append(name)
    if added:
        layers = sorted({n.split(".layers.")[0] + ".layers." + n.split(".layers.")[1].split(".")[0] for n in added})
        print(f"train: new identity layers {', '.join(layers)} ({len(added)} tensors)", flush=True)


def make_batch(enc, pre, seed, first, n_images, qtypes=shapes.QTYPES, p_easy=0.0, aux_patch=0, mix=None,
               free_kw=None, counts=False):
    """-> pixel_values [n, 3, S, S], ids [n*k, T] (0-padded), targets [n*k, T] (-100 = no loss),
    image row for each sequence [n*k]. Each item is a curriculum "easy" one (shapes.make_item
    easy=True) with probability p_easy, decided by its own seed. Targets are aligned with the *text* positions of ids
    (the image is spliced in later). mix: (grid, free, other) shares -> shapes.make_mixed_item
(free layouts with copies, and pictures answered with shapes.FIXED_ANSWER; no aux targets)."""
    pix, seqs, rows, aux, cnt = [], [], [], [], []
    for j in range(n_images):
        if mix:
            it = shapes.make_mixed_item(seed, first + j, mix, p_easy, free_kw)
        else:
            easy = np.random.default_rng([seed, first + j, 7]).random() < p_easy
            it = shapes.make_item(seed, first + j, easy=easy, labels=bool(aux_patch))
        pix.append(ref.preprocess_image(it["image"], pre, mode="stretch")["pixel_values"])
        if aux_patch:
            aux.append(patch_targets(it, pre["size"], aux_patch))
        if counts:
            cnt.append(count_targets(it))
        for qa in it["qas"]:
            if qa["type"] not in qtypes:
                continue
            p, a = enc.prompt(qa["question"]), enc.answer(qa["answer"])
            seqs.append((p, a))
            rows.append(j)
    t = max(len(p) + len(a) for p, a in seqs)
    ids = torch.zeros(len(seqs), t, dtype=torch.long)
    tgt = torch.full((len(seqs), t), -100, dtype=torch.long)
    for i, (p, a) in enumerate(seqs):
        full = p + a
        ids[i, :len(full)] = torch.tensor(full)
        # logits at text position k predict token k+1: answer tokens start at len(p)
        tgt[i, len(p) - 1:len(full) - 1] = torch.tensor(a)
    aux = tuple(torch.from_numpy(np.stack(a)) for a in zip(*aux)) if aux_patch else None
    if counts:
        aux = (torch.tensor([c for c, _ in cnt]), torch.from_numpy(np.stack([p for _, p in cnt])))
    return torch.from_numpy(np.stack(pix)), ids, tgt, torch.tensor(rows), aux


def loss_fn(net, pix, ids, tgt, rows, heads=None, aux=None, tok_w=None):
    """-> (language loss, token accuracy, auxiliary loss or None). heads: AuxHeads or CountHead."""
    v = net.model.vision_model(pix)
    img_all = net.model.visual_abstractor(v)
    aux_loss = heads.loss(v, img_all, aux) if heads is not None else None
    img = img_all[rows]
    x, is_img = net.splice(ids, img)
    nq = img.shape[1] - 1                       # spliced sequence is longer by Q (one -200 -> Q+1)
    j = int((ids[0] == M.IMAGE_TOKEN_INDEX).nonzero()[0])
    tgt_sp = torch.cat([tgt[:, :j], torch.full((tgt.shape[0], nq + 1), -100, dtype=torch.long), tgt[:, j + 1:]], 1)
    h = net.hidden(x, is_img)
    sel = tgt_sp != -100
    logits = net.lm_head(h[sel])
    y = tgt_sp[sel]
    if tok_w is None:
        loss = F.cross_entropy(logits, y)
    else:                                       # a weighted mean over the answer tokens
        w = tok_w[y]
        loss = (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
    acc = (logits.argmax(-1) == y).float().mean()
    return loss, acc, aux_loss


def adamw(named_params, lr):
    """AdamW as both training stages use it: weight decay 0.01 on matrices only."""
    decay = [p for n, p in named_params if p.dim() >= 2]
    no_decay = [p for n, p in named_params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-8)


def save_folder(out, net, cfg, pre, tokenizer_model, log):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2, sort_keys=True)
        f.write("\n")
    for name in ("generation_config.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(os.path.join(ORACLE, name), os.path.join(out, name))
    if os.path.abspath(tokenizer_model) != os.path.abspath(os.path.join(out, "tokenizer.model")):
        shutil.copyfile(tokenizer_model, os.path.join(out, "tokenizer.model"))
    sd = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    save_safetensors(os.path.join(out, "model.safetensors"), {k: v.numpy() for k, v in sd.items()})
    with open(os.path.join(out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", help="tokenizer.model (default OUT/tokenizer.model)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--images-per-step", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--easy", type=float, nargs=2, default=(0.9, 0.05), metavar=("START", "END"),
                    help="curriculum: share of easy pictures, START until 5%% of the steps, then linear "
                         "to END at 50%%")
    ap.add_argument("--time-schedule", action="store_true",
                    help="LR decay and curriculum follow wall time over --max-minutes when that is ahead of "
                         "the step count (the run then ends on time with a finished schedule; the result "
                         "depends on the machine's speed)")
    ap.add_argument("--init", help="start from this checkpoint folder's pytorch_model.bin (same config); "
                    "its aux_heads.pt (pretrain_vision.py) too when present")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (and save) after this long; 0 = no limit")
    ap.add_argument("--save-every", type=int, default=0,
                    help="also write the folder every N steps (to evaluate a run while it goes on); 0 = only at the end")
    ap.add_argument("--aux", type=float, default=2.0,
                    help="weight of the auxiliary patch/cell loss (AuxHeads; not saved); 0 = off")
    ap.add_argument("--count-aux", type=float, default=0.0,
                    help="weight of the auxiliary count loss (CountHead: objects in all, per shape, per colour; "
                         "not saved); works with --mix; needs --aux 0")
    ap.add_argument("--number-weight", type=float, default=1.0,
                    help="loss weight of the answer tokens that say how many (One..Four, A/An/a/an, plural s) "
                         "against 1 for the others: the counts of copies are what the model gets wrong most")
    ap.add_argument("--mix", type=float, nargs=3, metavar=("GRID", "FREE", "OTHER"),
                    help="draw items with shapes.make_mixed_item: shares of grid items, free page-style items "
                         "(identical copies allowed) and not-shapes items (photos, blanks, noise, dark, text: "
                         "answered shapes.FIXED_ANSWER); needs --aux 0")
    ap.add_argument("--free-n-probs", type=float, nargs=4, metavar=("P1", "P2", "P3", "P4"),
                    help="--mix: probabilities of 1-4 shapes in the free items (default uniform, as evaluated)")
    ap.add_argument("--free-copies", type=float, default=0.5,
                    help="--mix: share of free items with 2-4 shapes that have identical copies (default 0.5)")
    ap.add_argument("--group-count", action="store_true",
                    help="--mix: free items with 2-4 shapes get one more (training-only) question, \"How many "
                         "red circles are there?\" about one group: the per-group count a description needs")
    ap.add_argument("--keep-snapshots", action="store_true",
                    help="--save-every writes OUT/step-NNNNN/ folders (kept) instead of overwriting OUT")
    ap.add_argument("--first-index", type=int, default=0,
                    help="index of the first training item (a continuation can start on fresh items)")
    shapes.add_describe_order_arg(ap)
    ap.add_argument("overrides", nargs="*", help="config key=value")
    a = ap.parse_args(argv)
    shapes.set_describe_order(a.describe_order)
    if a.count_aux and a.aux:
        raise SystemExit("train: --count-aux replaces the patch/cell heads; use --aux 0")
    if a.mix and a.aux:
        raise SystemExit("train: --mix draws no auxiliary targets; use --aux 0")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tok_path = a.tokenizer or os.path.join(a.out, "tokenizer.model")
    overrides = {}
    for kv in a.overrides:
        k, _, v = kv.partition("=")
        overrides[k] = _parse(v)
    cfg, pre = make_config(overrides)
    enc = Encoder(tok_path)
    n_vocab = enc.tok.sp.get_piece_size()
    if n_vocab != cfg["vocab_size"]:
        raise SystemExit(f"train: tokenizer has {n_vocab} pieces, config vocab_size {cfg['vocab_size']}")
    net = M.Owl2(cfg)
    init_weights(net, a.seed)
    if a.init:
        sd = torch.load(os.path.join(a.init, "pytorch_model.bin"), map_location="cpu")
        grow_queries(sd, net, a.seed)
        grow_layers(sd, net)
        net.load_state_dict(sd, strict=True)
        print(f"train: weights from {a.init}", flush=True)
    n_par = sum(p.numel() for p in net.parameters())
    print(f"train: {n_par:,} parameters, image {cfg['visual_config']['visual_model']['image_size']}, "
          f"{a.steps} steps x {a.images_per_step} images x {6 if a.group_count else 5} questions"
          f"{' (at most)' if a.group_count else ''}, describe order {a.describe_order}, threads {a.threads}", flush=True)
    vm = cfg["visual_config"]["visual_model"]
    heads = None
    if a.aux:
        heads = AuxHeads(vm["hidden_size"], cfg["hidden_size"],
                         cfg["visual_config"]["visual_abstractor"]["num_learnable_queries"])
    if heads is not None and a.init and os.path.exists(os.path.join(a.init, "aux_heads.pt")):
        heads.load_state_dict(torch.load(os.path.join(a.init, "aux_heads.pt"), map_location="cpu")["heads"])
        print(f"train: auxiliary heads from {a.init}", flush=True)
    if a.count_aux:
        heads = CountHead(cfg["hidden_size"], cfg["visual_config"]["visual_abstractor"]["num_learnable_queries"])
    free_kw = {"p_copies": a.free_copies}
    if a.group_count:
        free_kw["group_count"] = True
    if a.free_n_probs:
        free_kw["n_probs"] = a.free_n_probs
    tok_w = None
    if a.number_weight != 1.0:
        tok_w = torch.ones(n_vocab)
        for piece in NUMBER_PIECES:
            i = enc.tok.sp.piece_to_id(piece)
            if i != enc.tok.sp.unk_id():
                tok_w[i] = a.number_weight
    params = list(net.named_parameters()) + (list(heads.named_parameters()) if heads else [])
    opt = adamw(params, a.lr)

    def progress(s):
        """Fraction of the run done: by steps, or (--time-schedule) by the larger of steps and
        wall time over --max-minutes, so the LR decay and the curriculum always complete."""
        f = s / max(1, a.steps)
        if a.time_schedule and a.max_minutes:
            f = max(f, (time.time() - t0) / (60 * a.max_minutes))
        return min(1.0, f)

    def lr_at(s, f):
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        return a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * f)))

    def easy_at(f):
        w = min(1.0, max(0.0, (f - 0.05) / 0.45))
        return a.easy[0] + (a.easy[1] - a.easy[0]) * w

    log = {"config_overrides": overrides, "args": {k: v for k, v in vars(a).items() if k != "overrides"},
           "env": {"EMB_STD": EMB_STD, "POS_STD": POS_STD},
           "parameters": n_par, "steps": []}
    t0 = time.time()
    run_loss = run_acc = None
    net.train()
    step = 0
    for step in range(a.steps):
        f = progress(step)
        lr, p_easy = lr_at(step, f), easy_at(f)
        for g in opt.param_groups:
            g["lr"] = lr
        pix, ids, tgt, rows, aux = make_batch(enc, pre, shapes.TRAIN_SEED, a.first_index + step * a.images_per_step,
                                              a.images_per_step, p_easy=p_easy,
                                              aux_patch=vm["patch_size"] if isinstance(heads, AuxHeads) else 0, mix=a.mix,
                                              free_kw=free_kw, counts=bool(a.count_aux),
                                              qtypes=shapes.TRAIN_QTYPES if a.group_count else shapes.QTYPES)
        loss, acc, aux_loss = loss_fn(net, pix, ids, tgt, rows, heads, aux, tok_w)
        opt.zero_grad(set_to_none=True)
        (loss + (a.count_aux or a.aux) * aux_loss if heads else loss).backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        lv, av = float(loss), float(acc)
        xv = float(aux_loss) if heads else 0.0
        run_aux = xv if step == 0 else 0.95 * run_aux + 0.05 * xv
        run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
        run_acc = av if run_acc is None else 0.95 * run_acc + 0.05 * av
        if (step + 1) % a.log_every == 0 or step == 0 or step + 1 == a.steps:
            el = time.time() - t0
            rec = {"step": step + 1, "loss": round(run_loss, 4), "token_acc": round(run_acc, 4), "aux": round(run_aux, 4), "lr": lr,
                   "easy": round(p_easy, 3), "seconds": round(el, 1), "steps_per_s": round((step + 1) / el, 3)}
            log["steps"].append(rec)
            print(f"step {step + 1}/{a.steps} loss {run_loss:.4f} token-acc {run_acc:.3f} aux {run_aux:.3f} lr {lr:.2e} "
                  f"easy {p_easy:.2f} {el:.0f}s ({(step + 1) / el:.2f} steps/s)", flush=True)
        if a.save_every and (step + 1) % a.save_every == 0:
            log["steps_done"] = step + 1
            log["seconds"] = round(time.time() - t0, 1)
            snap = os.path.join(a.out, f"step-{step + 1:05d}") if a.keep_snapshots else a.out
            save_folder(snap, net, cfg, pre, tok_path, log)
        if a.max_minutes and (time.time() - t0 > 60 * a.max_minutes or (a.time_schedule and f >= 1.0)):
            print(f"train: stopping after {step + 1} steps (--max-minutes {a.max_minutes})", flush=True)
            break
    log["steps_done"] = step + 1
    log["seconds"] = round(time.time() - t0, 1)
    save_folder(a.out, net.eval(), cfg, pre, tok_path, log)
    print(f"train: wrote {a.out} ({log['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
