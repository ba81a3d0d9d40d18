#!/usr/bin/python3
"""Does heed compute what PyTorch computes? Whole networks, same weights, same image.

    /usr/bin/python3 bench/torch_agree.py              # every case below
    /usr/bin/python3 bench/torch_agree.py --only resnet18-se
    /usr/bin/python3 bench/torch_agree.py --only train-se --verbose

For each benchmark network of ../shared/bench/WORKLOADS.md, PyTorch's own
definition (peer_torch.py) and heed's network file (nets/) get the same
weights and the same image, and their logits are compared:

  fmnist-plain/se/cbam  the shipped models (models/), trained by heed: their
                        tensors are loaded into peer_torch.py's FMnistNet;
  fmnist-eca, resnet18-eca  the same for ECA (nets/fmnist-eca.net,
                        nets/resnet18-eca.net), which WORKLOADS.md does not
                        define: PyTorch's side is the ECA-Net paper's module
                        (ECA below) in place of peer_torch.py's SE;
  resnet18-plain/se/cbam  weights drawn by PyTorch (seeded; batch-norm
                        statistics and affine terms drawn too, so that no
                        layer is an identity) and written as a heed model
                        file, which heed loads as it would any other;
  ram                   the shipped RAM model (models/ram-fmnist-cluttered60):
                        PyTorch's eval-mode RAM starts at heed's first glimpse
                        (drawn at random) and both choose the other five
                        (`heed glimpse --json`); locations and logits compared;
  fmnist-mobile         nets/fmnist-mobile.net (MobileNetV3's blocks:
                        hardswish, depthwise convolutions, SE with a
                        hardsigmoid gate), written out in PyTorch below,
                        weights drawn He-normal, batch norm as for resnet18;
  train-se, train-cbam, train-eca, train-mobile  one training step of
                        fmnist-se/cbam/eca/mobile (`heed train`'s
                        SGD defaults, batch norm on batch statistics, the
                        first 64 training items) from the same weights: every
                        updated tensor and running statistic must agree within
                        1e-3 of its own change (one that moves by less than
                        1e-6, by rounding only, within 1e-7; --verbose lists
                        them);
  train-ram             the gradients of one RAM training step (peer's
                        ram_loss) by PyTorch's autograd and by heed's
                        backward (build/bench/ram_step, built by make
                        check), same weights, images and random draws.

The image is a seeded random PNG written here (8-bit, so both read the same
values); heed reads it with `heed classify --json --top K --invert no`,
PyTorch gets (pixels / 255 - mean) / std. A case passes when every logit
agrees within --tol of the largest logit's magnitude. Parameters are paired
in order (heed's layers as `heed info --json` lists them, PyTorch's
state_dict), each pair checked for the same kind (weight, bias, running
mean or variance) and shape.

Needs Debian's python3-torch (/usr/bin/python3) and a built heed (make, and
make build/bench/ram_step for train-ram).
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import torch_blas  # beside this script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "bench")
VERBOSE = False  # --verbose: the training step's every tensor
ROUNDING_CHANGE = 1e-6  # a training step's tensor that moves less moves by rounding

# ---- files: PNG out, heed model in and out ---------------------------------


def write_png(path, width, height, channels, pixels):
    """8-bit grey (1) or RGB (3), rows unfiltered; pixels row-major, interleaved."""
    row = width * channels
    raw = b"".join(b"\0" + bytes(pixels[y * row:(y + 1) * row]) for y in range(height))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    colour = {1: 0, 3: 2}[channels]
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def read_model(path):
    """{tag: payload} of a heed model file (model.h), checksums verified."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"HEEDMODL":
        raise SystemExit(f"{path}: not a heed model")
    _, count = struct.unpack_from("<II", data, 8)
    chunks, off = {}, 16
    for _ in range(count):
        tag = data[off:off + 4].decode()
        (size,) = struct.unpack_from("<Q", data, off + 4)
        payload = data[off + 12:off + 12 + size]
        (crc,) = struct.unpack_from("<I", data, off + 12 + size)
        if zlib.crc32(payload) & 0xFFFFFFFF != crc:
            raise SystemExit(f"{path}: chunk {tag} fails its checksum")
        chunks[tag] = payload
        off += 16 + size
    return chunks


def parse_params(payload):
    """[(name, dims, float32 bytes)] of a PARM chunk."""
    (count,) = struct.unpack_from("<I", payload, 0)
    out, off = [], 4
    for _ in range(count):
        (n,) = struct.unpack_from("<H", payload, off)
        name = payload[off + 2:off + 2 + n].decode()
        off += 2 + n
        nd = payload[off]
        dims = struct.unpack_from(f"<{nd}I", payload, off + 1)
        off += 1 + 4 * nd
        numel = 1
        for d in dims:
            numel *= d
        out.append((name, tuple(dims), payload[off:off + 4 * numel]))
        off += 4 * numel
    return out


def write_model(path, netd, meta_lines, params):
    """A heed model file: NETD, META and PARM ([(name, dims, float32 bytes)])."""
    parm = [struct.pack("<I", len(params))]
    for name, dims, data in params:
        b = name.encode()
        parm.append(struct.pack("<H", len(b)) + b + struct.pack(f"<B{len(dims)}I", len(dims), *dims)
                    + data)
    chunks = [(b"NETD", netd.encode()), (b"META", "".join(l + "\n" for l in meta_lines).encode()),
              (b"PARM", b"".join(parm))]
    out = [b"HEEDMODL", struct.pack("<II", 1, len(chunks))]
    for tag, payload in chunks:
        out.append(tag + struct.pack("<Q", len(payload)) + payload
                   + struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"".join(out))


# ---- pairing heed's parameters with PyTorch's --------------------------------

SUFFIXES = {"bn": ["weight", "bias", "running_mean", "running_var"], "fc": ["weight", "bias"],
            "eca": ["conv.weight"]}


def eca_module(torch):
    """The ECA-Net paper's module (Wang et al. 2020, its eca_module.py):
    k from C unless given, one Conv1d across the pooled channels."""
    import math

    class ECA(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            t = int(abs((math.log(channels, 2) + 1) / 2))
            k = t if t % 2 else t + 1
            self.conv = torch.nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

        def forward(self, x):
            y = x.mean(dim=(2, 3), keepdim=True)
            y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
            return x * torch.sigmoid(y)

    return ECA


def with_eca(torch, peer):
    """peer_torch.py's networks take "eca" as an attention kind too."""
    make, eca = peer.make_attention, eca_module(torch)
    peer.make_attention = lambda kind, c, r: eca(c) if kind == "eca" else make(kind, c, r)


def heed_param_names(heed, net, torch_keys):
    """heed's parameter names in network order, from `heed info --json`.
    A conv's bias is taken to be there when PyTorch's next tensor is one (if
    heed's layer has none, loading the model says so)."""
    info = json.loads(subprocess.run([heed, "info", "--json", net], check=True,
                                     capture_output=True, text=True).stdout)
    names = []
    for layer in info["layers"]:
        kind = layer["type"]
        if kind == "conv":
            names.append(layer["name"] + ".weight")
            if len(names) < len(torch_keys) and torch_keys[len(names)].endswith(".bias"):
                names.append(layer["name"] + ".bias")
        elif kind in SUFFIXES and layer["params"] > 0:
            names += [layer["name"] + "." + s for s in SUFFIXES[kind]]
    return names


def paired(torch_model, heed_names):
    """[(heed name, torch tensor)] after checking that kinds and counts match;
    the tensors are the model's own (parameters, not detached copies)."""
    state = [(k, v) for k, v in torch_model.state_dict(keep_vars=True).items()
             if not k.endswith("num_batches_tracked")]
    if len(state) != len(heed_names):
        raise SystemExit(f"{len(heed_names)} heed tensors against {len(state)} PyTorch ones")
    for (tk, _), hk in zip(state, heed_names):
        if tk.rsplit(".", 1)[1] != hk.rsplit(".", 1)[1]:
            raise SystemExit(f"pairing heed's {hk} with PyTorch's {tk}: different kinds")
    return [(hk, v) for (_, v), hk in zip(state, heed_names)]


# ---- one case ----------------------------------------------------------------


def heed_logits(heed, model, image, classes, threads):
    out = subprocess.run([heed, "classify", "--model", model, "--json", "--top", str(classes),
                          "--invert", "no", "--threads", str(threads), image],
                         check=True, capture_output=True, text=True).stdout
    top = json.loads(out)[0]["top"]
    logits = [0.0] * classes
    for t in top:
        logits[t["index"]] = t["logit"]
    return logits


def compare(name, ours, theirs, tol):
    scale = max(abs(v) for v in theirs)
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    ok = worst <= tol * max(scale, 1e-12)
    print(f"{name:16s} {len(ours):5d} logits, largest |logit| {scale:9.4f}, "
          f"largest difference {worst:.3g} ({worst / scale:.2g} of it)  {'ok' if ok else 'DIFFERS'}")
    return ok


def fmnist_case(torch, peer, heed, att, tmp, tol, threads):
    model = os.path.join(REPO, "models", f"fmnist-{att}.heed")
    chunks = read_model(model)
    meta = dict(l.split(" ", 1) for l in chunks["META"].decode().splitlines() if " " in l)
    net = peer.FMnistNet(att).eval()
    tensors = parse_params(chunks["PARM"])
    heed_names = [n for n, _, _ in tensors]
    by_name = {n: (d, b) for n, d, b in tensors}
    with torch.no_grad():
        for hk, t in paired(net, heed_names):
            dims, data = by_name[hk]
            if tuple(t.shape) != dims:
                raise SystemExit(f"{hk}: heed {dims}, PyTorch {tuple(t.shape)}")
            t.copy_(torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(dims))
    g = torch.Generator().manual_seed(5)
    pixels = torch.randint(0, 256, (28 * 28,), generator=g).tolist()
    image = os.path.join(tmp, f"fmnist-{att}.png")
    write_png(image, 28, 28, 1, pixels)
    x = torch.tensor(pixels, dtype=torch.float32).reshape(1, 1, 28, 28) / 255
    x = (x - float(meta["input_mean"])) / float(meta["input_std"])
    with torch.no_grad():
        theirs = net(x)[0].tolist()
    return compare(f"fmnist-{att}", heed_logits(heed, model, image, 10, threads), theirs, tol)


def mobile_net(torch):
    """nets/fmnist-mobile.net in PyTorch: MobileNetV3's inverted residual
    blocks with hardswish, and its SE (torchvision's SqueezeExcitation with
    scale_activation=Hardsigmoid; Linear layers where torchvision has 1x1
    convolutions, the same products on a pooled vector)."""
    nn, F = torch.nn, torch.nn.functional

    class SE(nn.Module):
        def __init__(self, c, hidden):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(c, hidden), nn.Linear(hidden, c)

        def forward(self, x):
            e = F.hardsigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
            return x * e[:, :, None, None]

    class Block(nn.Module):
        def __init__(self, cin, exp, cout, hidden, stride):
            super().__init__()
            self.residual = stride == 1 and cin == cout
            self.expand, self.bn1 = nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp)
            self.dw = nn.Conv2d(exp, exp, 3, stride, 1, groups=exp, bias=False)
            self.bn2 = nn.BatchNorm2d(exp)
            self.att = SE(exp, hidden)
            self.project, self.bn3 = nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)

        def forward(self, x):
            y = F.hardswish(self.bn1(self.expand(x)))
            y = self.att(F.hardswish(self.bn2(self.dw(y))))
            y = self.bn3(self.project(y))
            return x + y if self.residual else y

    class Mobile(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.stem_bn = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
            self.blocks = nn.Sequential(Block(16, 48, 16, 16, 1), Block(16, 64, 32, 16, 2),
                                        Block(32, 96, 32, 24, 1), Block(32, 128, 64, 32, 2))
            self.head, self.head_bn = nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256)
            self.fc1, self.fc2 = nn.Linear(256, 128), nn.Linear(128, 10)

        def forward(self, x):
            x = self.blocks(F.hardswish(self.stem_bn(self.stem(x))))
            x = F.hardswish(self.head_bn(self.head(x))).mean(dim=(2, 3))
            return self.fc2(F.hardswish(self.fc1(x)))

    return Mobile()


def drawn_case(torch, heed, name, net, netfile, shape, classes, tmp, tol, threads):
    """Weights drawn by PyTorch (seeded; batch-norm statistics and affine
    terms drawn too, so that no layer is an identity), written as a heed
    model file, which heed loads as it would any other."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    keys = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    names = heed_param_names(heed, netfile, keys)
    params = [(hk, tuple(t.shape), t.detach().contiguous().numpy().astype("<f4").tobytes())
              for hk, t in paired(net, names)]
    with open(netfile) as f:
        netd = f.read()
    meta = ([f"classes {classes}"] + [f"class c{i}" for i in range(classes)]
            + ["input_mean 0", "input_std 1", "dark_background 0", "dataset torch_agree",
               "recipe bench/torch_agree.py (weights drawn by PyTorch)", "epochs 0",
               "test_accuracy -1", "train_seconds 0", "cpu -"])
    model = os.path.join(tmp, f"{name}.heed")
    write_model(model, netd, meta, params)
    c, h, w = shape
    g = torch.Generator().manual_seed(9)
    pixels = torch.randint(0, 256, (h * w * c,), generator=g).tolist()
    image = os.path.join(tmp, f"{name}.png")
    write_png(image, w, h, c, pixels)
    x = torch.tensor(pixels, dtype=torch.float32).reshape(1, h, w, c).permute(0, 3, 1, 2) / 255
    with torch.no_grad():
        theirs = net(x.contiguous())[0].tolist()
        other = net(torch.rand(1, c, h, w, generator=g))[0].tolist()
    # The image must reach the logits, or agreeing within tol checks only
    # what the biases make of nothing: another image has to move them by
    # ten times the difference allowed.
    scale = max(abs(v) for v in theirs)
    reach = max(abs(a - b) for a, b in zip(theirs, other))
    if reach < 10 * tol * scale:
        print(f"{name:16s} another image moves the logits by {reach:.2g} ({reach / scale:.2g} of the "
              f"largest), under ten times --tol: the comparison would not see the image  DIFFERS")
        return False
    return compare(name, heed_logits(heed, model, image, classes, threads), theirs, tol)


def mobile_case(torch, heed, tmp, tol, threads):
    """PyTorch's default weights shrink the signal layer after layer, and
    eval-mode batch norm with drawn statistics does not rescale it:
    another image moved the logits by 1.5e-5 of their size, below --tol.
    He-normal weights keep the image in them."""
    torch.manual_seed(11)
    net = mobile_net(torch).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight)
    return drawn_case(torch, heed, "fmnist-mobile", net, os.path.join(REPO, "nets", "fmnist-mobile.net"),
                      (1, 28, 28), 10, tmp, tol, threads)


def resnet_case(torch, peer, heed, att, tmp, tol, threads):
    torch.manual_seed(7)
    net = peer.ResNet18(att).eval()
    return drawn_case(torch, heed, f"resnet18-{att}", net, os.path.join(REPO, "nets", f"resnet18-{att}.net"),
                      (3, 224, 224), 1000, tmp, tol, threads)


def ram_case(torch, peer, heed, tmp, tol, threads):
    """The shipped RAM model: PyTorch's eval-mode RAM starts where heed's
    first glimpse went (that one is drawn at random), then both choose
    the other five; their locations and the logits are compared."""
    model = os.path.join(REPO, "models", "ram-fmnist-cluttered60.heed")
    chunks = read_model(model)
    meta = dict(l.split(" ", 1) for l in chunks["META"].decode().splitlines() if " " in l)
    net = peer.RAM().eval()
    state = net.state_dict()
    with torch.no_grad():
        for name, dims, data in parse_params(chunks["PARM"]):
            t = state[name.split(".", 1)[1]]  # heed's "ram.fc_g.weight" is PyTorch's "fc_g.weight"
            if tuple(t.shape) != dims:
                raise SystemExit(f"{name}: heed {dims}, PyTorch {tuple(t.shape)}")
            t.copy_(torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(dims))
    g = torch.Generator().manual_seed(11)
    pixels = torch.randint(0, 256, (60 * 60,), generator=g).tolist()
    image = os.path.join(tmp, "ram.png")
    write_png(image, 60, 60, 1, pixels)
    out = subprocess.run([heed, "glimpse", "--model", model, "--json", "--top", "10", "--invert",
                          "no", "--seed", "3", "--threads", str(threads), image],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    ours = [0.0] * 10
    for t in r["top"]:
        ours[t["index"]] = t["logit"]
    heed_path = [(s["x"], s["y"]) for s in r["glimpses"]]
    x = torch.tensor(pixels, dtype=torch.float32).reshape(1, 1, 60, 60) / 255
    x = (x - float(meta["input_mean"])) / float(meta["input_std"])
    # PyTorch's forward draws l_0 = rand * 2 - 1: it is given heed's instead,
    # and the sensor records every location it is called with.
    l0 = torch.tensor([heed_path[0]], dtype=torch.float64)
    torch_path, sensor, rand = [], net.sensor.forward, torch.rand
    net.sensor.forward = lambda img, l: (torch_path.append(tuple(l[0].tolist())), sensor(img, l))[1]
    torch.rand = lambda *a, **k: ((l0 + 1) / 2).float()
    try:
        with torch.no_grad():
            theirs = net(x)[0][0].tolist()
    finally:
        torch.rand, net.sensor.forward = rand, sensor
    # heed prints locations to 6 decimals.
    moved = max(abs(a - b) for p, q in zip(heed_path, torch_path) for a, b in zip(p, q))
    same_path = len(heed_path) == len(torch_path) and moved <= 2e-6
    print(f"ram path        {len(heed_path)} glimpses, largest difference in location {moved:.2g}"
          f"  {'ok' if same_path else 'DIFFERS'}")
    return compare("ram", ours, theirs, tol) and same_path


def ram_train_case(torch, peer, heed, tmp, threads):
    """One training step's gradients of W3's RAM: PyTorch's autograd on
    peer_torch.py's RAM and ram_loss against heed's backward
    (build/bench/ram_step), from the same weights (drawn by PyTorch), the
    same 16 images and the same random draws (first locations and samples,
    chosen here; the samples' pixel centres fall a quarter pixel from any
    rounding tie, some samples outside [-1, 1] to be clamped). Half the
    labels are the network's own answer, so rewards of 0 and 1 both occur.
    Each tensor's gradient must agree within 1e-4 of its largest entry."""
    step = os.path.join(os.path.dirname(heed), "bench", "ram_step")
    if not os.path.exists(step):
        raise SystemExit(f"{step} is missing: make {os.path.relpath(step, REPO)}")
    torch.manual_seed(13)
    net = peer.RAM().train()
    N, T = 16, net.glimpses
    g = torch.Generator().manual_seed(17)
    x = torch.rand(N, 1, 60, 60, generator=g)
    l0 = torch.randint(-64, 65, (N, 2), generator=g).float() / 64  # exact in float32
    cells = torch.randint(-6, 67, (N, T - 1, 2), generator=g).float()
    samples = (cells + 0.25) / 30 - 1  # (s + 1) / 2 * 60 = cell + 0.25 (beyond [0, 60]: clamped)

    def forward():
        """net(x) with l_0 and the samples replayed: PyTorch draws
        l = rand * 2 - 1 and s = mean + std * randn_like(mean)."""
        rand, randn_like, t = torch.rand, torch.randn_like, [0]

        def given_noise(mean):
            t[0] += 1
            return ((samples[:, t[0] - 1] - mean) / net.std).detach()
        torch.rand = lambda *a, **k: (l0 + 1) / 2
        torch.randn_like = given_noise
        try:
            return net(x)
        finally:
            torch.rand, torch.randn_like = rand, randn_like

    with torch.no_grad():
        answer = forward()[0].argmax(1)
    labels = torch.where(torch.arange(N) % 2 == 0, answer, (answer + 1) % 10)
    loss = peer.ram_loss(*forward(), labels)
    net.zero_grad()
    loss.backward()

    with open(os.path.join(REPO, "nets", "ram.net")) as f:
        netd = f.read()
    params = [("ram." + k, tuple(t.shape), t.detach().contiguous().numpy().astype("<f4").tobytes())
              for k, t in net.state_dict().items()]
    meta = (["classes 10"] + [f"class c{i}" for i in range(10)]
            + ["input_mean 0", "input_std 1", "dark_background 0", "dataset torch_agree",
               "recipe bench/torch_agree.py (weights drawn by PyTorch)", "epochs 0",
               "test_accuracy -1", "train_seconds 0", "cpu -"])
    files = {k: os.path.join(tmp, f"ram_step.{k}") for k in ("model", "x", "labels", "draws", "grads")}
    write_model(files["model"], netd, meta, params)
    draws = torch.cat([l0[:, None, :], samples], 1)  # (N, T, 2)
    for key, t in (("x", x), ("labels", labels.to(torch.int32)), ("draws", draws)):
        with open(files[key], "wb") as f:
            f.write(t.contiguous().numpy().astype("<i4" if key == "labels" else "<f4").tobytes())
    out = subprocess.run([step, files["model"], files["x"], files["labels"], files["draws"],
                          files["grads"]], check=True, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS=str(threads))).stdout
    report = json.loads(out)
    with open(files["grads"], "rb") as f:
        grads = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    theirs = dict(net.named_parameters())
    worst_name, worst = "", 0.0
    for item in report["tensors"]:
        t = theirs[item["name"].split(".", 1)[1]]
        ours = grads[item["offset"]:item["offset"] + item["count"]].reshape(t.shape)
        diff = (ours - t.grad).abs().max().item() / max(t.grad.abs().max().item(), 1e-12)
        if VERBOSE:
            print(f"  {item['name']:22s} largest |grad| {t.grad.abs().max().item():.3g}, "
                  f"heed against PyTorch {diff:.2g} of it")
        if diff > worst:
            worst_name, worst = item["name"], diff
    loss_diff = abs(report["loss"] - loss.item()) / abs(loss.item())
    ok = worst <= 1e-4 and loss_diff <= 1e-5 and len(report["tensors"]) == len(theirs)
    rewarded = int((answer == labels).sum())
    print(f"train ram one step, {len(theirs)} gradients ({rewarded} of {N} rewarded): largest "
          f"difference {worst:.2g} of that tensor's largest ({worst_name}), loss {loss_diff:.2g}"
          f"  {'ok' if ok else 'DIFFERS'}")
    return ok


def fmnist_train_items(count, data_dir="/usr/share/datasets/fashion-mnist"):
    """The first `count` training images (bytes, 28*28 each) and labels."""
    import gzip
    with gzip.open(os.path.join(data_dir, "train-images-idx3-ubyte.gz")) as f:
        images = f.read(16 + count * 784)[16:]
    with gzip.open(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")) as f:
        labels = f.read(8 + count)[8:]
    return images, list(labels)


def train_case(torch, peer, heed, tmp, tol, threads, att="se"):
    """One SGD step (momentum 0.9, weight decay 5e-4 on weights only, as
    heed train's defaults) on the first 64 training items, batch norm on
    batch statistics, by heed train and by PyTorch from the same weights:
    the updated tensors and running statistics are compared, each against
    the size of its own change. The starting weights come from a run with
    a learning rate of 1e-30, which moves no weight (heed refuses 0)."""
    net_file = os.path.join(REPO, "nets", f"fmnist-{att}.net")
    run = [heed, "train", "--net", net_file, "--epochs", "1", "--batch", "64", "--limit", "64",
           "--test-limit", "64", "--schedule", "constant", "--seed", "3",
           "--threads", str(threads)]
    start, stepped = os.path.join(tmp, "start.heed"), os.path.join(tmp, "stepped.heed")
    lr = 0.05
    for out, rate in ((start, "1e-30"), (stepped, str(lr))):
        subprocess.run(run + ["--out", out, "--lr", rate], check=True, capture_output=True)
    before = parse_params(read_model(start)["PARM"])
    after = {n: (d, b) for n, d, b in parse_params(read_model(stepped)["PARM"])}
    meta = dict(l.split(" ", 1) for l in read_model(start)["META"].decode().splitlines() if " " in l)
    net = (mobile_net(torch) if att == "mobile" else peer.FMnistNet(att)).train()
    pairs = paired(net, [n for n, _, _ in before])
    with torch.no_grad():
        for (hk, t), (_, dims, data) in zip(pairs, before):
            if hk.endswith("running_mean") or hk.endswith("running_var"):
                continue  # the start run moved them: PyTorch's own (0 and 1) are where both begin
            t.copy_(torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(dims))
    images, labels = fmnist_train_items(64)
    x = torch.frombuffer(bytearray(images), dtype=torch.uint8).float().reshape(64, 1, 28, 28) / 255
    x = (x - float(meta["input_mean"])) / float(meta["input_std"])
    decay = [t for hk, t in pairs if hk.endswith(".weight") and t.dim() > 1]
    rest = [t for hk, t in pairs if t.requires_grad and not any(t is d for d in decay)]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": rest, "weight_decay": 0.0}], lr=lr, momentum=0.9)
    start_values = {hk: t.detach().clone() for hk, t in pairs}
    loss = torch.nn.functional.cross_entropy(net(x), torch.tensor(labels))
    opt.zero_grad()
    loss.backward()
    opt.step()
    worst_name, worst, still, worst_still = "", 0.0, [], 0.0
    for hk, t in pairs:
        dims, data = after[hk]
        ours = torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(dims)
        change = (t.detach() - start_values[hk]).abs().max().item()
        gap = (ours - t.detach()).abs().max().item()
        if change < ROUNDING_CHANGE:
            # It moves by rounding only: in exact arithmetic fmnist-mobile's
            # last batch norm of a block passes its bias no gradient (a batch
            # norm follows the sum), and a batch norm after a 1x1 convolution
            # of batch-normalised input sees a batch mean of 0. Its change
            # measures nothing; the two must agree in absolute terms.
            if VERBOSE:
                print(f"  {hk:28s} change {change:.3g} (rounding), heed against PyTorch {gap:.2g}")
            still.append(hk)
            worst_still = max(worst_still, gap)
            continue
        diff = gap / max(change, 1e-12)
        if VERBOSE:
            print(f"  {hk:28s} change {change:.3g}, heed against PyTorch {diff:.2g} of it")
        if diff > worst:
            worst_name, worst = hk, diff
    ok = worst <= 1e-3 and worst_still <= ROUNDING_CHANGE / 10
    still_note = (f"; {len(still)} that move by rounding only (under {ROUNDING_CHANGE:g}) agree within "
                  f"{worst_still:.2g}" if still else "")
    print(f"train fmnist-{att} one step, {len(pairs)} tensors: largest difference {worst:.2g} of "
          f"that tensor's change ({worst_name}){still_note}  {'ok' if ok else 'DIFFERS'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heed", default=os.path.join(REPO, "build", "heed"))
    ap.add_argument("--only", help="one case, e.g. fmnist-se or resnet18-cbam")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="largest difference allowed, as a fraction of the largest |logit| [1e-4]")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="print every tensor of the training step")
    args = ap.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    try:
        import torch
    except ImportError:
        raise SystemExit("needs PyTorch: apt-get install python3-torch, then run with /usr/bin/python3")
    torch.set_num_threads(args.threads)
    # Its sums round by its BLAS: the README's lines are the reference one's.
    print(f"PyTorch {torch.__version__} on {torch_blas.describe(torch_blas.sgemm_library())[0]}")
    sys.path.insert(0, SHARED)
    import peer_torch as peer
    with_eca(torch, peer)
    cases = [("fmnist", a) for a in ("plain", "se", "cbam", "eca", "mobile")] + \
            [("resnet18", a) for a in ("plain", "se", "cbam", "eca")] + [("ram", "")] + \
            [("train", a) for a in ("se", "cbam", "eca", "mobile", "ram")]
    if args.only:
        cases = [c for c in cases if f"{c[0]}-{c[1]}".rstrip("-") == args.only]
        if not cases:
            raise SystemExit(f"no case {args.only}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for family, att in cases:
            if family == "train" and att == "ram":
                ok &= ram_train_case(torch, peer, args.heed, tmp, args.threads)
                continue
            if family == "train":
                ok &= train_case(torch, peer, args.heed, tmp, args.tol, args.threads, att)
                continue
            if family == "ram":
                ok &= ram_case(torch, peer, args.heed, tmp, args.tol, args.threads)
                continue
            if att == "mobile":
                ok &= mobile_case(torch, args.heed, tmp, args.tol, args.threads)
                continue
            run = fmnist_case if family == "fmnist" else resnet_case
            ok &= run(torch, peer, args.heed, att, tmp, args.tol, args.threads)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
