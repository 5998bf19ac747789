#!/usr/bin/python3
"""shapes — deterministic synthetic "coloured shapes" VQA data for owlet's demo model.

Every item is a function of (split seed, index) only: `make_item(seed, i)` draws a square RGB
picture (PIL, 64..256 px) with 1-4 objects and returns it with every question/answer pair that
is unambiguous for it. Objects have pairwise different shapes AND pairwise different colours,
so "the circle", "the red one" and "the red square" always name one object.

- shapes  : circle, square, triangle, star, heart, cross, diamond
- colours : red, orange, yellow, green, cyan, blue, purple, pink, black (well separated in RGB,
            each jittered by up to +-14 per channel), on a light background
- styles  : filled, outlined (thick pen), hand-drawn (wobbly thick pen stroke, like a canvas
            pen tool; sometimes not quite closed)
- places  : a 3x3 grid; an object's centre stays inside its cell ("Top left.", "Top.",
            "Center.", ...); one object may be large
- backgrounds: white (drawing canvas), light tint, light gradient, light noise / paper grain

Question types and answer forms (answers are short and deterministic; `</s>` ends them in
training):
  shape    "What shape is this?" -> "A circle."     (one object; else "What shape is the red one?")
  colour   "What colour is the circle?" -> "Red."   ("What colour is the shape?" for one object)
  count    "How many shapes are there?" -> "Three."
  position "Where is the red square?" -> "Top left."
  describe "Describe the image." -> "A red circle and a blue square." (reading order: rows top
           to bottom, then left to right)

Splits: TRAIN_SEED for training (indices 0, 1, 2, ...), HELDOUT_SEED for evaluation; the numpy
seed sequences [seed, i] never coincide between splits.

Beyond these grid items (make_item): make_free_item draws page-style pictures (free positions
and sizes, identical copies allowed), make_other_item pictures that are not coloured shapes
(photos, blanks, noise, dark backgrounds, text) whose every answer is FIXED_ANSWER, and
make_mixed_item mixes the three for training (train.py --mix). See the section "free layouts".

    /usr/bin/python3 weights_tool/train_demo/shapes.py --out DIR [--seed 2] [--n 12]
        [--kind grid|free|other|other-heldout|mixed]
writes DIR/NNN.png and DIR/items.json (a quick look at the data).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

TRAIN_SEED = 1
HELDOUT_SEED = 2

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "diamond")
COLOURS = {
    "red": (220, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 25),
    "green": (35, 165, 55),
    "cyan": (30, 200, 215),
    "blue": (35, 70, 215),
    "purple": (135, 45, 185),
    "pink": (245, 115, 195),
    "black": (25, 25, 25),
}
COLOUR_NAMES = tuple(COLOURS)
NUMBERS = ("Zero", "One", "Two", "Three", "Four")
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
QTYPES = ("shape", "colour", "count", "position", "describe")
TRAIN_QTYPES = QTYPES + ("groupcount",)  # train.py --group-count: training only, never evaluated


def place_name(row, col):
    """3x3 cell -> answer text: 'Top left.', 'Top.', 'Center.', 'Left.', 'Bottom right.'"""
    r, c = ROWS[row], COLS[col]
    if r == "middle" and c == "center":
        s = "center"
    elif r == "middle":
        s = c
    elif c == "center":
        s = r
    else:
        s = f"{r} {c}"
    return s[0].upper() + s[1:] + "."


# ------------------------------------------------------------------------------ geometry

def outline(shape, cx, cy, r, rot, rng):
    """Closed outline of a shape as a list of (x, y), centred at (cx, cy), 'radius' r."""
    if shape == "circle":
        asp = rng.uniform(0.9, 1.1)
        pts = [(math.cos(t) * r * asp, math.sin(t) * r / asp) for t in np.linspace(0, 2 * math.pi, 48, False)]
    elif shape == "square":
        s = r * 0.82
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "diamond":
        pts = [(0, -r), (0.62 * r, 0), (0, r), (-0.62 * r, 0)]
    elif shape == "triangle":
        pts = [(r * math.cos(a), r * math.sin(a) + 0.15 * r) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else 0.42 * r
            pts.append((rr * math.cos(a), rr * math.sin(a) + 0.08 * r))
    elif shape == "heart":
        pts = []
        for t in np.linspace(0, 2 * math.pi, 48, False):
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x * r / 16.5, -(y + 2.5) * r / 16.5))
    elif shape == "cross":
        w, s = 0.33 * r, 0.95 * r
        pts = [(-w, -s), (w, -s), (w, -w), (s, -w), (s, w), (w, w), (w, s), (-w, s), (-w, w),
               (-s, w), (-s, -w), (-w, -w)]
    else:
        raise ValueError(f"outline: unknown shape {shape!r}")
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def resample_closed(pts, step):
    """Points every `step` px along the closed polyline."""
    out = []
    n = len(pts)
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        seg = math.hypot(x1 - x0, y1 - y0)
        k = max(1, int(seg / step))
        out += [(x0 + (x1 - x0) * j / k, y0 + (y1 - y0) * j / k) for j in range(k)]
    return out


def wobble(pts, cx, cy, amp, rng):
    """Smooth radial wobble (a few random low-frequency sines), like a hand-drawn outline."""
    n = len(pts)
    t = np.arange(n) / n * 2 * math.pi
    d = np.zeros(n)
    for f in (2, 3, 5):
        d += rng.uniform(-1, 1) * amp / f * np.sin(f * t + rng.uniform(0, 2 * math.pi))
    d += rng.normal(0, amp * 0.15, n)
    out = []
    for (x, y), di in zip(pts, d):
        vx, vy = x - cx, y - cy
        nrm = math.hypot(vx, vy) or 1.0
        out.append((x + vx / nrm * di, y + vy / nrm * di))
    return out


def pen_line(draw, pts, colour, width, closed):
    """Thick pen stroke with round joints and caps."""
    seq = pts + [pts[0]] if closed else pts
    draw.line(seq, fill=colour, width=width, joint="curve")
    rad = width / 2.0
    for x, y in (seq[0], seq[-1]):
        draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=colour)


# ------------------------------------------------------------------------------ rendering

def background(size, rng):
    kind = rng.choice(["white", "white", "tint", "gradient", "noise"], p=[0.3, 0.1, 0.2, 0.2, 0.2])
    if kind == "white":
        return Image.new("RGB", (size, size), (255, 255, 255)), kind
    c0 = rng.integers(205, 256, 3)
    if kind == "tint":
        return Image.new("RGB", (size, size), tuple(int(v) for v in c0)), kind
    if kind == "gradient":
        c1 = rng.integers(205, 256, 3)
        a = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size] / max(1, size - 1)
        t = np.clip((np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5, 0, 1)[..., None]
        img = c0 * (1 - t) + c1 * t
    else:
        img = c0 + rng.normal(0, rng.uniform(3, 9), (size, size, 1))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), kind


N_PROBS = (0.3, 0.25, 0.25, 0.2)


def make_item(seed, index, n_probs=N_PROBS, p_big=0.4, easy=False, labels=False):
    """-> dict(image=PIL RGB, objects=[...], qas=[{type, question, answer}], meta).
    n_probs: probabilities of 1..4 objects (a training curriculum may start with more single
    objects; evaluation always uses the default); p_big: chance that a single object is large;
    easy: one large, mostly filled object in the centre of a white canvas (training curriculum:
    the average of such a picture already says what it is).
    labels: also return "label" (PIL "L" image, same size: 0 = background, k = the k-th object
    drawn, pixels of later objects over earlier ones) and "label_classes" ([(shape index, colour
    index)] in drawing order) for training's auxiliary patch loss; draws nothing else and takes
    no random numbers, so the item is the same either way."""
    rng = np.random.default_rng([seed, index])
    size = int(rng.choice([64, 96, 112, 128, 160, 224, 256]))
    img, bg = background(size, rng)
    if easy:
        img, bg = Image.new("RGB", (size, size), (255, 255, 255)), "white"
    draw = ImageDraw.Draw(img)
    lab = Image.new("L", (size, size), 0) if labels else None
    ldraw = ImageDraw.Draw(lab) if labels else None
    drawn = []
    n = int(rng.choice([1, 2, 3, 4], p=list(n_probs)))
    if easy:
        n = 1
    shapes = rng.choice(len(SHAPES), n, replace=False)
    colours = rng.choice(len(COLOUR_NAMES), n, replace=False)
    cells = np.array([4]) if easy else rng.choice(9, n, replace=False)
    cell = size / 3.0
    objects = []
    for s, c, p in zip(shapes, colours, cells):
        row, col = divmod(int(p), 3)
        big = n == 1 and rng.random() < p_big
        if easy:                      # curriculum: one large object in the middle
            r = rng.uniform(0.75, 1.35) * cell
        elif big:                     # a large single object: centre cell may fill the canvas
            r = rng.uniform(0.6, 1.4) * cell
        else:
            r = rng.uniform(0.28, 0.44) * cell
        cx = (col + 0.5 + rng.uniform(-0.14, 0.14)) * cell
        cy = (row + 0.5 + rng.uniform(-0.14, 0.14)) * cell
        r = min(r, 0.92 * min(cx, cy, size - cx, size - cy))   # stays on the canvas
        shape, cname = SHAPES[int(s)], COLOUR_NAMES[int(c)]
        lim = 0.17 if shape in ("square", "diamond", "cross") else 0.3
        rot = rng.uniform(-lim, lim)
        rgb = tuple(int(v) for v in np.clip(np.array(COLOURS[cname]) + rng.integers(-14, 15, 3), 0, 255))
        style = str(rng.choice(["filled", "outline", "sketch"], p=[0.8, 0.1, 0.1] if easy else [0.5, 0.2, 0.3]))
        pts = outline(shape, cx, cy, r, rot, rng)
        pen = max(2, int(round(r * rng.uniform(0.14, 0.24))))
        k = len(drawn) + 1
        drawn.append((int(s), int(c)))
        if style == "filled":
            draw.polygon(pts, fill=rgb)
            if labels:
                ldraw.polygon(pts, fill=k)
        elif style == "outline":
            pen_line(draw, pts, rgb, pen, True)
            if labels:
                pen_line(ldraw, pts, k, pen, True)
        else:
            dense = wobble(resample_closed(pts, max(1.5, r / 12)), cx, cy, r * 0.07, rng)
            closed = True
            if rng.random() < 0.3:     # pen lifted a little early
                dense = dense[: max(3, int(len(dense) * rng.uniform(0.9, 0.97)))]
                closed = False
            pen_line(draw, dense, rgb, pen, closed)
            if labels:
                pen_line(ldraw, dense, k, pen, closed)
        objects.append({"shape": shape, "colour": cname, "row": row, "col": col, "style": style,
                        "rgb": list(rgb), "radius": round(float(r), 2)})
    objects.sort(key=lambda o: (o["row"], o["col"]))
    item = {"image": img, "objects": objects, "qas": questions(objects, rng),
            "meta": {"seed": seed, "index": index, "size": size, "background": bg}}
    if labels:
        item["label"], item["label_classes"] = lab, drawn
    return item


# ------------------------------------------------------------------------------ questions

def _cap(s):
    return s[0].upper() + s[1:]


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def describe(objects):
    parts = [f"{article(o['colour'])} {o['colour']} {o['shape']}" for o in objects]
    if len(parts) == 1:
        s = parts[0]
    else:
        s = ", ".join(parts[:-1]) + " and " + parts[-1]
    return _cap(s) + "."


def questions(objects, rng):
    """One question of each type with a random phrasing; answers deterministic from the objects."""
    one = len(objects) == 1
    o = objects[int(rng.integers(len(objects)))]
    colour_word = str(rng.choice(["colour", "color"]))
    qs = []
    if one:
        q = str(rng.choice(["What shape is this?", "What shape is it?", "What is this shape?",
                            "Which shape is this?", "What shape do you see?"]))
    else:
        q = str(rng.choice([f"What shape is the {o['colour']} one?", f"What shape is {o['colour']}?",
                            f"Which shape is {o['colour']}?"]))
    qs.append({"type": "shape", "question": q, "answer": f"A {o['shape']}."})  # no vowel shape
    if one and rng.random() < 0.5:
        q = str(rng.choice([f"What {colour_word} is the shape?", f"What {colour_word} is this?",
                            f"What {colour_word} is it?"]))
    else:
        q = str(rng.choice([f"What {colour_word} is the {o['shape']}?",
                            f"Which {colour_word} is the {o['shape']}?"]))
    qs.append({"type": "colour", "question": q, "answer": _cap(o["colour"]) + "."})
    q = str(rng.choice(["How many shapes are there?", "How many shapes are in the picture?",
                        "How many objects are there?", "Count the shapes."]))
    qs.append({"type": "count", "question": q, "answer": NUMBERS[len(objects)] + "."})
    if one and rng.random() < 0.4:
        q = str(rng.choice(["Where is the shape?", f"Where is the {o['shape']}?"]))
    else:
        q = f"Where is the {o['colour']} {o['shape']}?"
    qs.append({"type": "position", "question": q, "answer": place_name(o["row"], o["col"])})
    q = str(rng.choice(["Describe the image.", "What is in the picture?", "What do you see?",
                        "Describe the picture."]))
    qs.append({"type": "describe", "question": q, "answer": describe(objects)})
    return qs


def template_text():
    """Every question phrasing and answer form, for the tokenizer corpus."""
    lines = []
    for s in SHAPES:
        for c in COLOUR_NAMES:
            for cw in ("colour", "color"):
                lines += [f"What {cw} is the {s}?", f"Which {cw} is the {s}?"]
            lines += [f"What shape is the {c} one?", f"Where is the {c} {s}?", _cap(f"{article(c)} {c} {s}."),
                      f"A {s}.", _cap(c) + ".", f"Which shape is {c}?", f"What shape is {c}?"]
    lines += ["What shape is this?", "What shape is it?", "What is this shape?", "Which shape is this?",
              "What shape do you see?", "How many shapes are there?", "How many objects are there?",
              "How many shapes are in the picture?", "Count the shapes.", "Where is the shape?",
              "Describe the image.", "What is in the picture?", "What do you see?", "Describe the picture."]
    lines += [n + "." for n in NUMBERS]
    lines += [place_name(r, c) for r in range(3) for c in range(3)]
    return lines


# ------------------------------------------------------------------------------ free layouts (page-style)
#
# make_free_item: pictures as the web page's drawing pad makes them (web/draw.mjs): a white
# 448-px canvas (sometimes another size or a light background), shapes stamped at any position
# and size in the palette's exact colours (filled, or outlined with the pen width), or drawn by
# hand with the pen; two or more identical shapes (same shape and colour) may appear.
# make_other_item: pictures that are not coloured shapes on a light background -- photos, blank
# or near-blank canvases, noise, dark backgrounds (with or without shapes), text -- where every
# question gets FIXED_ANSWER.

FIXED_ANSWER = "I can only see coloured shapes."
PHOTO_DIRS = ("/usr/lib/python3/dist-packages/skimage/data", "/usr/share/matplotlib/mpl-data/sample_data")
# photos used in training; HELDOUT_PHOTOS are never used in training (evaluation only)
TRAIN_PHOTOS = ("astronaut.png", "camera.png", "horse.png", "hubble_deep_field.jpg", "retina.jpg", "coins.png",
                "moon.png", "brick.png", "grass.png", "gravel.png", "ihc.png", "cell.png", "clock_motion.png",
                "phantom.png", "page.png", "text.png", "bw_text.png", "Minduka_Present_Blue_Pack.png")
HELDOUT_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "grace_hopper.jpg")
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
         "DejaVuSerif-Italic.ttf", "DejaVuSansCondensed-Bold.ttf")
WORDS = ("hello world owl picture shape the quick brown fox jumps over lazy dog red blue green circle "
         "photo cat house tree sun moon star apple open file draw image text page note list time day "
         "name city road car book love home water light dark one two three 2026 ABC owlet model").split()
CELL_MARGIN = 0.04       # a free shape's centre stays this far (x size) from the 3x3 grid lines
FREE_MIX = (0.25, 0.40, 0.35)   # training mixture: grid items, free items, other items


def plural(shape):
    return shape + ("es" if shape.endswith("s") else "s")


# The order of the groups in a description: "reading" -- the reading order of each group's first
# member; "count" -- the bigger groups first, ties in reading order ("Two green squares and a pink
# circle."), so the first word (the largest group's size) follows from how many shapes and how
# many kinds there are, and the group it belongs to is named next. train.py and eval.py set it
# (--describe-order); both must agree.
DESCRIBE_ORDERS = ("reading", "count")
DESCRIBE_ORDER = "reading"


def set_describe_order(order):
    global DESCRIBE_ORDER
    if order not in DESCRIBE_ORDERS:
        raise ValueError(f"describe order {order!r}: not one of {DESCRIBE_ORDERS}")
    DESCRIBE_ORDER = order


def add_describe_order_arg(ap):
    """train.py's and eval.py's --describe-order (they call set_describe_order with it)."""
    ap.add_argument("--describe-order", choices=DESCRIBE_ORDERS, default="reading",
                    help="order of the groups in describe answers (shapes.DESCRIBE_ORDER): reading order of "
                         "each group's first member, or the bigger groups first")


def describe_groups(objects):
    """'Two red circles and a blue square.': groups of identical objects (shape and colour), in
    the reading order of each group's first member (objects are already in reading order), or
    with DESCRIBE_ORDER "count" the bigger groups first (a stable sort, so ties keep that order)."""
    groups = []
    for o in objects:
        key = (o["shape"], o["colour"])
        for g in groups:
            if g[0] == key:
                g[1] += 1
                break
        else:
            groups.append([key, 1])
    if DESCRIBE_ORDER == "count":
        groups.sort(key=lambda g: -g[1])
    parts = [f"{article(c)} {c} {s}" if k == 1 else f"{NUMBERS[k].lower()} {c} {plural(s)}" for (s, c), k in groups]
    s = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return _cap(s) + "."


def _cell_of(v, size):
    return min(2, int(v * 3 // size))


def _free_centre(rng, size, r):
    """A centre keeping the shape on the canvas and CELL_MARGIN away from the grid lines, or None."""
    m = CELL_MARGIN * size
    for _ in range(20):
        lo, hi = 0.95 * r, size - 0.95 * r
        if hi <= lo:
            return None
        x, y = rng.uniform(lo, hi, 2)
        if all(min(abs(v - size / 3), abs(v - 2 * size / 3)) >= m for v in (x, y)):
            return float(x), float(y)
    return None


def _draw_shape(draw, shape, cx, cy, r, rgb, style, pen, rot, rng):
    pts = outline(shape, cx, cy, r, rot, rng)
    if style == "filled":
        draw.polygon(pts, fill=rgb)
    elif style == "outline":
        pen_line(draw, pts, rgb, pen, True)
    else:
        dense = wobble(resample_closed(pts, max(1.5, r / 12)), cx, cy, r * 0.07, rng)
        closed = rng.random() >= 0.3
        if not closed:
            dense = dense[: max(3, int(len(dense) * rng.uniform(0.9, 0.97)))]
        pen_line(draw, dense, rgb, pen, closed)


def _place_objects(rng, size, specs):
    """specs [(shape, colour, radius)] -> [(shape, colour, r, cx, cy)], not overlapping; radii
    shrink until everything fits."""
    for _ in range(30):
        placed = []
        for shape, cname, r in specs:
            for _ in range(60):
                c = _free_centre(rng, size, r)
                if c and all(math.hypot(c[0] - p[3], c[1] - p[4]) >= 1.08 * (r + p[2]) for p in placed):
                    placed.append((shape, cname, r, c[0], c[1]))
                    break
            else:
                break
        if len(placed) == len(specs):
            return placed
        specs = [(s, c, r * 0.88) for s, c, r in specs]
    raise RuntimeError("shapes: cannot place the objects")


def _groups(rng, n, p_copies=0.5):
    """Sizes of the groups of identical objects: n=3 -> e.g. [3], [2, 1], [1, 1, 1]; with n >= 2 a
    picture has copies with probability p_copies."""
    if n == 1 or rng.random() < 1.0 - p_copies:
        return [1] * n
    options = {2: [[2]], 3: [[3], [2, 1]], 4: [[4], [3, 1], [2, 2], [2, 1, 1]]}[n]
    return list(options[int(rng.integers(len(options)))])


def make_free_item(seed, index, n_probs=None, p_copies=0.5, group_count=False):
    """-> dict like make_item's: 1-4 objects at free positions and sizes, drawn like the web page's
    tools; identical copies (same shape and colour) allowed. An object's position answer is the 3x3
    cell of its centre (centres stay CELL_MARGIN from the grid lines); different groups have
    different shapes and different colours, so "the red one" still names one group.
    n_probs (probabilities of 1-4 objects; default uniform) and p_copies (share of pictures with
    copies among those with 2-4 objects) let training weight the hard items; the defaults draw
    exactly what the evaluation sets use. group_count adds the training-only "groupcount"
    question (free_questions)."""
    rng = np.random.default_rng([seed, index, 21])
    size = int(rng.choice([448, 448, 448, 224, 256, 320, 384]))
    if rng.random() < 0.75:
        img, bg = Image.new("RGB", (size, size), (255, 255, 255)), "white"
    else:
        img, bg = background(size, rng)
    draw = ImageDraw.Draw(img)
    n = int(rng.choice([1, 2, 3, 4])) if n_probs is None else int(rng.choice([1, 2, 3, 4], p=n_probs))
    counts = _groups(rng, n, p_copies)
    shapes_ = rng.choice(len(SHAPES), len(counts), replace=False)
    colours = rng.choice(len(COLOUR_NAMES), len(counts), replace=False)
    dmax = 0.8 if n == 1 else (0.5 if n == 2 else 0.4)
    specs, styles = [], []
    for s, c, k in zip(shapes_, colours, counts):
        d0 = rng.uniform(0.12, dmax)
        st0 = str(rng.choice(["stamp", "stamp_outline", "sketch", "jitter"], p=[0.45, 0.2, 0.2, 0.15]))
        for _ in range(k):
            d = d0 if rng.random() < 0.6 else rng.uniform(0.12, dmax)
            specs.append((SHAPES[int(s)], COLOUR_NAMES[int(c)], d * size / 2))
            styles.append(st0 if rng.random() < 0.7 else
                          str(rng.choice(["stamp", "stamp_outline", "sketch", "jitter"], p=[0.45, 0.2, 0.2, 0.15])))
    placed = _place_objects(rng, size, specs)
    objects = []
    for (shape, cname, r, cx, cy), st in zip(placed, styles):
        rgb = COLOURS[cname]
        rot, style = 0.0, "filled"
        if st == "stamp_outline":
            style = "outline"
        elif st == "sketch":
            style = "sketch"
        elif st == "jitter":
            lim = 0.17 if shape in ("square", "diamond", "cross") else 0.3
            rot = rng.uniform(-lim, lim)
            rgb = tuple(int(v) for v in np.clip(np.array(rgb) + rng.integers(-14, 15, 3), 0, 255))
            style = str(rng.choice(["filled", "outline"], p=[0.7, 0.3]))
        pen = int(round(rng.uniform(max(2.0, 0.08 * r), max(2.5, min(40.0, 0.3 * r)))))
        _draw_shape(draw, shape, cx, cy, r, tuple(rgb), style, pen, rot, rng)
        objects.append({"shape": shape, "colour": cname, "row": _cell_of(cy, size), "col": _cell_of(cx, size),
                        "style": st, "drawn": style, "x": round(cx / size, 4), "y": round(cy / size, 4),
                        "radius": round(r, 2), "r": round(r / size, 4), "pen": round(pen / size, 4)})
    objects.sort(key=lambda o: (o["row"], o["col"], o["y"], o["x"]))
    return {"image": img, "objects": objects, "qas": free_questions(objects, rng, group_count),
            "meta": {"seed": seed, "index": index, "size": size, "background": bg, "kind": "free"}}


def free_questions(objects, rng, group_count=False):
    """questions() for pictures that may hold identical copies: shape/colour questions name a
    group ("the red one" / "the circle"), position asks only about an object without a copy (no
    position question when every object has one), describe counts the groups. group_count
    (training only; pictures of 2-4 objects): one more question, "How many red circles are
    there?" about a random group, answered "Two." -- the count a description must give each
    group, asked on its own. Drawn after the others, so the other questions stay the same."""
    key = lambda o: (o["shape"], o["colour"])  # noqa: E731
    single = [o for o in objects if sum(key(p) == key(o) for p in objects) == 1]
    qs = questions(objects, rng) if len(objects) == 1 else None
    if qs is not None:
        return qs
    o = objects[int(rng.integers(len(objects)))]
    cw = str(rng.choice(["colour", "color"]))
    qs = [{"type": "shape", "question": str(rng.choice([f"What shape is the {o['colour']} one?",
                                                         f"What shape is {o['colour']}?",
                                                         f"Which shape is {o['colour']}?"])),
           "answer": f"A {o['shape']}."},
          {"type": "colour", "question": str(rng.choice([f"What {cw} is the {o['shape']}?",
                                                          f"Which {cw} is the {o['shape']}?"])),
           "answer": _cap(o["colour"]) + "."},
          {"type": "count", "question": str(rng.choice(["How many shapes are there?", "How many shapes are in the picture?",
                                                         "How many objects are there?", "Count the shapes."])),
           "answer": NUMBERS[len(objects)] + "."}]
    if single:
        p = single[int(rng.integers(len(single)))]
        qs.append({"type": "position", "question": f"Where is the {p['colour']} {p['shape']}?",
                   "answer": place_name(p["row"], p["col"])})
    qs.append({"type": "describe", "question": str(rng.choice(["Describe the image.", "What is in the picture?",
                                                               "What do you see?", "Describe the picture."])),
               "answer": describe_groups(objects)})
    if group_count:
        groups = sorted({key(o) for o in objects})
        shape, colour = groups[int(rng.integers(len(groups)))]
        k = sum(key(o) == (shape, colour) for o in objects)
        qs.append({"type": "groupcount", "question": f"How many {colour} {plural(shape)} are there?",
                   "answer": NUMBERS[k] + "."})
    return qs


_PHOTOS = {}


def _photo(name):
    if name not in _PHOTOS:
        for d in PHOTO_DIRS:
            path = os.path.join(d, name)
            if os.path.exists(path):
                im = Image.open(path)
                if im.mode in ("RGBA", "LA", "P"):
                    im = im.convert("RGBA")
                    bgd = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(bgd, im)
                _PHOTOS[name] = im.convert("RGB")
                break
        else:
            raise FileNotFoundError(f"shapes: photo {name} not found in {PHOTO_DIRS}")
    return _PHOTOS[name]


def _photo_crop(rng, name, size):
    from PIL import ImageEnhance, ImageOps
    im = _photo(name)
    w, h = im.size
    if rng.random() < 0.25:
        box = (0, 0, w, h)
    else:
        s = rng.uniform(0.35, 1.0) * min(w, h)
        a = rng.uniform(0.75, 1.33)
        cw, ch = min(w, s * a), min(h, s / a)
        x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        box = (x0, y0, x0 + cw, y0 + ch)
    out = im.crop(tuple(int(v) for v in box)).resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.6, 1.4))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.7, 1.3))
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.0 if rng.random() < 0.15 else 0.6, 1.5))
    return out


def _light(rng, size):
    return background(size, rng)[0] if rng.random() < 0.5 else Image.new("RGB", (size, size), (255, 255, 255))


def make_other_item(seed, index, heldout=False):
    """-> dict like make_item's for a picture that is NOT coloured shapes on a light background;
    every question's answer is FIXED_ANSWER. heldout: photos from HELDOUT_PHOTOS only (else
    TRAIN_PHOTOS). kinds: photo, blank (white/light, maybe a few specks or a faint line), noise,
    dark (dark background, 0-4 shapes), text (words in DejaVu fonts on a light background)."""
    rng = np.random.default_rng([seed, index, 31])
    size = int(rng.choice([448, 448, 224, 256, 320, 384, 512]))
    kind = str(rng.choice(["photo", "blank", "noise", "dark", "text"], p=[0.35, 0.15, 0.12, 0.18, 0.2]))
    if kind == "photo":
        img = _photo_crop(rng, str(rng.choice(HELDOUT_PHOTOS if heldout else TRAIN_PHOTOS)), size)
    elif kind == "blank":
        img = _light(rng, size)
        draw = ImageDraw.Draw(img)
        extra = str(rng.choice(["none", "specks", "faint"]))
        if extra == "specks":
            for _ in range(int(rng.integers(1, 5))):
                x, y = rng.uniform(0, size, 2)
                r = rng.uniform(0.5, 0.012 * size)
                draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        elif extra == "faint":
            pts = [tuple(rng.uniform(0, size, 2)) for _ in range(int(rng.integers(2, 6)))]
            g = int(rng.integers(200, 240))
            draw.line(pts, fill=(g, g, g), width=int(rng.integers(1, 4)))
    elif kind == "noise":
        how = str(rng.choice(["uniform", "gauss", "blocks"]))
        if how == "uniform":
            a = rng.integers(0, 256, (size, size, 3))
        elif how == "gauss":
            a = rng.integers(0, 256, 3) + rng.normal(0, rng.uniform(30, 90), (size, size, 3))
        else:
            k = int(rng.choice([4, 8, 16, 32]))
            small = rng.integers(0, 256, (k, k, 3)).astype(np.uint8)
            a = np.asarray(Image.fromarray(small).resize((size, size), Image.BILINEAR if rng.random() < 0.5 else Image.NEAREST))
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    elif kind == "dark":
        c0 = rng.integers(0, 70, 3)
        if rng.random() < 0.6:
            img = Image.new("RGB", (size, size), tuple(int(v) for v in c0))
        else:
            img = Image.fromarray(np.clip(c0 + rng.normal(0, rng.uniform(2, 12), (size, size, 1)), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        n = int(rng.choice([0, 1, 2, 3, 4]))
        specs = [(SHAPES[int(rng.integers(7))], str(rng.choice(COLOUR_NAMES)), rng.uniform(0.12, 0.4) * size / 2)
                 for _ in range(n)]
        for shape, cname, r, cx, cy in _place_objects(rng, size, specs) if n else []:
            rgb = COLOURS[cname] if rng.random() < 0.8 else tuple(int(v) for v in rng.integers(0, 256, 3))
            style = str(rng.choice(["filled", "outline", "sketch"], p=[0.6, 0.2, 0.2]))
            _draw_shape(draw, shape, cx, cy, r, rgb, style, max(2, int(r * 0.2)), 0.0, rng)
    else:
        from PIL import ImageFont
        img = _light(rng, size)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 6))):
            font = ImageFont.truetype(os.path.join(FONT_DIR, str(rng.choice(FONTS))), int(rng.uniform(0.04, 0.16) * size))
            words = " ".join(str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 5))))
            rgb = COLOURS[str(rng.choice(COLOUR_NAMES))] if rng.random() < 0.4 else (0, 0, 0)
            draw.text(tuple(rng.uniform(-0.1, 0.8, 2) * size), words, fill=rgb, font=font)
    qs = other_questions(rng)
    return {"image": img, "objects": [], "qas": qs,
            "meta": {"seed": seed, "index": index, "size": size, "kind": kind, "heldout": heldout}}


def other_questions(rng):
    """The usual question templates, naming random shapes/colours; every answer FIXED_ANSWER."""
    objs = [{"shape": str(rng.choice(SHAPES)), "colour": str(rng.choice(COLOUR_NAMES)), "row": 0, "col": 0}]
    if rng.random() < 0.5:
        objs.append({"shape": str(rng.choice(SHAPES)), "colour": str(rng.choice(COLOUR_NAMES)), "row": 1, "col": 1})
    return [{"type": q["type"], "question": q["question"], "answer": FIXED_ANSWER} for q in questions(objs, rng)]


def make_mixed_item(seed, index, mix=FREE_MIX, p_easy=0.0, free_kw=None):
    """Training item: a grid item (make_item), a free item (make_free_item(**free_kw)) or an other
    item, by `mix`."""
    u = np.random.default_rng([seed, index, 41]).random()
    if u < mix[0]:
        easy = np.random.default_rng([seed, index, 7]).random() < p_easy
        return make_item(seed, index, easy=easy)
    if u < mix[0] + mix[1]:
        return make_free_item(seed, index, **(free_kw or {}))
    return make_other_item(seed, index)


ITEM_MAKERS = {"grid": make_item, "free": make_free_item, "other": make_other_item,
               "other-heldout": lambda s, i: make_other_item(s, i, heldout=True), "mixed": make_mixed_item}


def main(argv=None):
    ap = argparse.ArgumentParser(description="write a few items as PNG + JSON")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=HELDOUT_SEED)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--kind", choices=["grid", "free", "other", "other-heldout", "mixed"], default="grid")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    items = []
    for i in range(a.n):
        it = ITEM_MAKERS[a.kind](a.seed, i)
        name = f"{i:03d}.png"
        it["image"].save(os.path.join(a.out, name))
        items.append({"file": name, "objects": it["objects"], "qas": it["qas"], "meta": it["meta"]})
    with open(os.path.join(a.out, "items.json"), "w") as f:
        json.dump(items, f, indent=1)
    print(f"wrote {a.n} items to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
