#!/usr/bin/env python3
"""Mutation fuzzer for the file loaders behind the heed command.

Meant for the sanitizer build (make SAN=1 build/san/heed); run it from the repository root.
Each kind of file is mutated and handed to the commands that load it:
  net    network files: heed info, bench --net, train --net
  model  models and checkpoints: heed info, classify, eval, glimpse, train --resume
  png    PNG images: heed classify (attention and Grad-CAM overlays), glimpse
  jpeg   JPEG images: the same
  idx    Fashion-MNIST IDX files, plain and gzipped: heed eval, data export, train
Seeds: nets/*.net, images/*.png, images/*.jpg, models/*.heed, and what start-up makes
in OUT/seeds with the heed under test: a tiny CNN and a tiny RAM network trained one
epoch of two (a model and a checkpoint each), IDX files cut from
/usr/share/datasets/fashion-mnist, colour overlays and copies of them with EXIF
orientation tags. Model mutants mostly get their
chunks' checksums recomputed, so that they pass the checksum test into the parser.

Commands run under timeout (20 s) with ASAN_OPTIONS=detect_leaks=1:abort_on_error=0,
UBSAN_OPTIONS=print_stacktrace=1, OMP_NUM_THREADS=1, HEED_PROGRESS=0. Outcomes:
  ok         exit status 0
  refused    non-zero exit status and one line on stderr, starting 'heed '
  problems   sanitizer (a report), signal, timeout, unclear (a non-zero exit
             without exactly one such line)
The first problem of each (command, outcome, first stack frame in heed's own code)
keeps its mutant as OUT/findings/KIND-HASH.EXT, and beside it KIND-HASH.EXT.txt: a
one-line description, the command that reproduces it, its stderr.
Prints a line per kind and a summary table. Exits 1 if there were problems, 0 if
none, 2 if start-up failed.
"""
import argparse
import gzip
import hashlib
import math
import os
import random
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

KINDS = ('net', 'model', 'png', 'jpeg', 'idx')
PROBLEMS = ('sanitizer', 'signal', 'timeout', 'unclear')
IDX_NAMES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
RUN_LIMIT_S = 20
RUN_ENV = dict(os.environ, ASAN_OPTIONS='detect_leaks=1:abort_on_error=0',
               UBSAN_OPTIONS='print_stacktrace=1', OMP_NUM_THREADS='1', HEED_PROGRESS='0')
rng = random.Random()

# Per kind: the commands run on every mutant, and those of which one more is run ('': none).
# In them {m} is the mutant, {seeds} and {work} folders under OUT; 'a|b' is a or b, at random.
IMAGE_COMMANDS = [
    'classify --model {seeds}/tiny.heed --json {m}',
    'classify --model {seeds}/tiny.heed --map attention|gradcam --invert auto|yes|no --overlay {work}'
    ' --format png|jpg {m}',
    'glimpse --model {seeds}/tinyram.heed --json --overlay {work} --format png|jpg {m}']
COMMANDS = {
    'net': (['info {m}'], ['bench --net {m} --seconds 0.01 --batch 1|2 --mode infer|train'] * 2 + [''] + [
        'train --net {m} --data-dir {seeds}/idx --epochs 1 --batch 8 --limit 16 --test-limit 8 --threads 1'
        ' --out {work}/net.heed']),
    'model': (['info {m}'], [
        'classify --model {m} --json {image}',
        'classify --model {m} --map gradcam --overlay {work} {image}',
        'glimpse --model {m} --overlay {work} {image}',
        'eval --model {m} --data-dir {seeds}/idx',
        'train --resume {m} --data-dir {seeds}/idx --limit 40 --test-limit 20 --out {work}/resumed.heed']),
    'png': ([], IMAGE_COMMANDS),
    'jpeg': ([], IMAGE_COMMANDS),
    'idx': ([], [
        'eval --model {seeds}/tiny.heed|{seeds}/tinyram.heed --data-dir {m}',  # a plain and a canvas dataset
        'data export --data-dir {m} --count 5 --start 0|35 --data fmnist|fmnist-translated60|fmnist-cluttered100'
        ' --split test|train {work}/export',
        'train --net {seeds}/tiny.net --data-dir {m} --epochs 1 --batch 8 --limit 32 --test-limit 8 --threads 1'
        ' --out {work}/idx.heed']),
}

# Integers where size and count arithmetic overflows or wraps.
EDGE_INTS = [0, 1, 2, 3, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000, 46341, 1000000,
             0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]
# A tiny CNN with every kind of block (so model mutants meet them all) that trains in a second.
TINY_NET = ('input 1 28 28\nseq name=s1\n  conv name=c1 out=4 k=3 pad=1 bias=0\n  bn name=bn1\n  relu\n'
            '  cbam name=att r=2 k=3\n  maxpool k=2\nend\nresidual name=r1\n  conv out=4 k=3 pad=1\n  relu\n'
            'shortcut\n  conv name=proj out=4 k=1\nend\nse name=se r=2\ngap\nflatten\nfc name=fc out=10\n')
TINY_RAM_NET = ('input 1 60 60\nram name=ram glimpses=2 patch=8 scales=2 glimpse_hidden=16 loc_hidden=16'
                ' hidden=32 classes=10 std=0.17\n')
# Small values reach the layers' shape arithmetic (a pad of 3 on a 3x3 kernel overflowed a buffer once);
# the others, the parser's range checks.
NET_NUMBERS = ['0', '-1', '2', '3', '4', '5', '7', '9', '16', '29', '65537', '2147483647', '-2147483648',
               '4294967296', '1000000001', '99999999999999999999', '1e30', 'nan', 'inf', '-0', '0x10', '1.5', '']
NET_KEYS = ['out', 'k', 'stride', 'pad', 'dilation', 'groups', 'bias', 'r', 'name', 'glimpses', 'patch',
            'scales', 'hidden', 'classes', 'lstm', 'std', 'samples', 'p', 'eps', 'slope', 'exclude_pad']
NET_LINES = ['end', 'shortcut', 'residual', 'seq', 'flatten', 'gap', 'relu', 'bn', 'input 1 28 28',
             'conv out=8 k=3', 'fc out=10', 'maxpool k=2', 'se r=4', 'cbam r=2 k=7', 'dropout p=1',
             'avgpool k=3 stride=1 pad=1 exclude_pad=1', 'conv out=4 k=3 groups=2 dilation=3 pad=3',
             'ram glimpses=3 patch=9 scales=4 glimpse_hidden=8 loc_hidden=8 hidden=8 classes=10 lstm=1 samples=3']
ODD_TEXT = ['\0', '\r', '\t', '#', '=', 'x' * 100, '\xff', '\x1b[2J']
META_VALUES = ['0', '-1', '10', '1001', 'nan', 'inf', '1e-9', '1e39', '', 'x', '2 3', '\x01', 'A' * 40,
               'fmnist-cluttered60', 'folder:/nonexistent']
# train --resume replays a checkpoint's recipe: options a crafted one could smuggle in.
RECIPE_TAILS = ['--epochs 0', '--batch -1', '--lr nan', '--resume x', '--bogus', '--threads 100000',
                '--seed 99999999999999999999', '--epochs 1000000000', '--net', 'x' * 600]


# ---- mutations --------------------------------------------------------------------

def patched(data, at, value):
    """data with the bytes from `at` on overwritten by value."""
    return data[:at] + value + data[at + len(value):]


def mutate_bytes(data, edits=None):
    """Blind edits: what every format gets some of, whatever its structure."""
    b = bytearray(data)
    for _ in range(edits or rng.randint(1, 4)):
        b = b or bytearray(1)
        at, edit = rng.randrange(len(b)), rng.randrange(6)
        if edit == 0:
            b[at] ^= 1 << rng.randrange(8)
        elif edit == 1:
            del b[at:at + rng.choice([1, 16, len(b)])]
        elif edit == 2:
            b[at:at] = b[at:at + rng.randint(1, 64)]
        elif edit == 3:
            b[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            b[at:at + 4] = struct.pack(rng.choice('<>') + 'I', rng.choice(EDGE_INTS))
    return bytes(b)


def mutate_net_text(text):
    """Edits of a network description: its numbers (where the range checks are), keys and lines."""
    lines = text.split('\n')
    for _ in range(rng.randint(1, 3)):
        at, edit = rng.randrange(len(lines)), rng.randrange(6)
        numbers = list(re.finditer(r'-?\d+(\.\d+)?(e-?\d+)?', lines[at]))
        if edit <= 1 and numbers:
            m = rng.choice(numbers)
            lines[at] = lines[at][:m.start()] + rng.choice(NET_NUMBERS) + lines[at][m.end():]
        elif edit == 2 and len(lines) > 1:
            del lines[at]
        elif edit == 3:
            lines[at] += ' %s=%s' % (rng.choice(NET_KEYS), rng.choice(NET_NUMBERS + ['x', 'a' * 70]))
        elif edit == 4:
            lines.insert(at, rng.choice(NET_LINES + [lines[at]]))
        else:
            cut = rng.randrange(len(lines[at]) + 1)
            lines[at] = lines[at][:cut] + rng.choice(ODD_TEXT) + lines[at][cut:]
    return '\n'.join(lines)


def mutate_meta_text(text):
    """Edits of a model's 'key value' metadata lines."""
    lines = text.split('\n')
    for _ in range(rng.randint(1, 3)):
        at, edit = rng.randrange(len(lines)), rng.randrange(4)
        key = lines[at].split(' ')[0]
        if edit == 0:
            lines[at] += ' ' + rng.choice(RECIPE_TAILS) if key == 'recipe' else rng.choice(ODD_TEXT[:3])
        elif edit == 1:
            lines[at] = key + ' ' + rng.choice(META_VALUES)
        elif edit == 2 or len(lines) == 1:
            lines.insert(at, lines[at])
        else:
            del lines[at]
    return '\n'.join(lines)


def as_bytes(mutate_text):
    return lambda data: mutate_text(data.decode('latin1')).encode('latin1')


def model_chunks(data):
    """The version and the [tag, payload] chunks of a model file (layout in lib/model.h)."""
    version, count = struct.unpack_from('<II', data, 8)
    chunks, at = [], 16
    for _ in range(count):
        size = struct.unpack_from('<Q', data, at + 4)[0]
        chunks.append([data[at:at + 4], data[at + 12:at + 12 + size]])
        at += 16 + size
    return version, chunks


def model_file(version, chunks, good_checksums):
    out = b'HEEDMODL' + struct.pack('<II', version, len(chunks))
    for tag, payload in chunks:
        crc = zlib.crc32(payload) ^ (0 if good_checksums else 0x10)
        out += tag + struct.pack('<Q', len(payload)) + payload + struct.pack('<I', crc)
    return out


def parm_tensors(payload):
    """A PARM chunk as [name, dims, float bytes] per tensor."""
    count, at, tensors = struct.unpack_from('<I', payload)[0], 4, []
    for _ in range(count):
        length = struct.unpack_from('<H', payload, at)[0]
        name, ndim = payload[at + 2:at + 2 + length], payload[at + 2 + length]
        dims = list(struct.unpack_from('<%dI' % ndim, payload, at + 3 + length))
        at += 3 + length + 4 * ndim
        tensors.append([name, dims, payload[at:at + 4 * math.prod(dims)]])
        at += 4 * math.prod(dims)
    return tensors


def parm_payload(tensors, count):
    out = struct.pack('<I', count)
    for name, dims, values in tensors:
        out += struct.pack('<H', len(name)) + name + bytes([len(dims) % 256])
        out += b''.join(struct.pack('<I', d % 2**32) for d in dims) + values
    return out


def edit_parm(payload):
    """The tensors' count, shapes, names and values: what the loader checks one by one."""
    tensors = parm_tensors(payload)
    tensor, count, edit = rng.choice(tensors), len(tensors), rng.randrange(6)
    if edit == 0:
        count = rng.choice([0, count - 1, count + 1, 0x80000000, 0xffffffff])
    elif edit == 1:
        tensor[1][rng.randrange(len(tensor[1]))] = rng.choice(EDGE_INTS)
    elif edit == 2:
        tensor[1] = tensor[1] + [1] if rng.random() < 0.5 else tensor[1][:-1]
    elif edit == 3:  # non-finite anywhere, or a negative batch norm running_var
        value = struct.pack('<f', rng.choice([math.nan, math.inf, -1.0, 1e38, 3e-45]))
        tensor[2] = patched(tensor[2], 4 * rng.randrange(len(tensor[2]) // 4), value)
    elif edit == 4:
        tensor[0] = rng.choice([b'', b'x' * 63, b'x' * 64, tensor[0] + b'\0', tensor[0][:-1], tensors[0][0]])
    elif rng.random() < 0.5:
        tensors.remove(tensor)
    else:
        tensors.append(list(tensor))
    return parm_payload(tensors, count)


def edit_optm(payload):
    """A checkpoint's optimizer state: u64 steps, u64 epochs done, then float moments."""
    edit = rng.randrange(4)
    if edit == 0:
        return patched(payload, 0, struct.pack('<Q', rng.choice([2**48 + 1, 2**63, 2**64 - 1])))
    if edit == 1:
        return patched(payload, 8, struct.pack('<Q', rng.choice([0, 3, 2**31, 2**64 - 1])))
    if edit == 2:
        value = struct.pack('<f', rng.choice([math.nan, math.inf, -1.0, 1e38]))
        return patched(payload, 16 + 4 * rng.randrange((len(payload) - 16) // 4), value)
    return payload[:rng.randrange(len(payload))]


CHUNK_EDITORS = {b'NETD': as_bytes(mutate_net_text), b'META': as_bytes(mutate_meta_text),
                 b'PARM': edit_parm, b'OPTM': edit_optm}


def edit_chunks(chunks):
    """One chunk's payload, or the chunk list: chunks missing, repeated or renamed."""
    at, edit = rng.randrange(len(chunks)), rng.randrange(8)
    tag = chunks[at][0]
    if edit < 5 and tag in CHUNK_EDITORS:
        try:
            chunks[at][1] = CHUNK_EDITORS[tag](chunks[at][1])
        except (struct.error, IndexError, ValueError, OverflowError):  # an earlier edit broke its layout
            chunks[at][1] = mutate_bytes(chunks[at][1], 1)
    elif edit == 5 and len(chunks) > 1:
        del chunks[at]
    elif edit == 6:
        chunks.insert(rng.randrange(len(chunks) + 1), list(chunks[at]))
    elif edit == 7:
        chunks[at][0] = rng.choice([b'netd', b'NET\0', b'PARM', b'META', b'OPTM', b'ZZZZ'])


def mutate_model(data):
    if rng.random() < 0.1:  # blind edits, for the checksum and truncation checks
        return mutate_bytes(data)
    version, chunks = model_chunks(data)
    for _ in range(rng.randint(1, 2)):
        edit_chunks(chunks)
    out = model_file(version, chunks, good_checksums=rng.random() < 0.92)
    if rng.random() < 0.1:  # a version, chunk count or first chunk size that disagrees with the file
        out = rng.choice([patched(out, 8, struct.pack('<I', rng.choice([0, 2]))),
                          patched(out, 12, struct.pack('<I', rng.choice([0, len(chunks) + 1, 65, 2**32 - 1]))),
                          patched(out, 20, struct.pack('<Q', rng.choice([len(chunks[0][1]) + 1, 2**64 - 1])))])
    return out[:rng.randrange(len(out))] if rng.random() < 0.05 else out


def png_chunks(data):
    chunks, at = [], 8
    while at + 8 <= len(data):
        size = struct.unpack_from('>I', data, at)[0]
        chunks.append([data[at + 4:at + 8], data[at + 8:at + 8 + size]])
        at += 12 + size
    return chunks


def mutate_png(data):
    """Mostly chunk edits, checksums recomputed: libpng refuses a critical chunk with a bad one."""
    if rng.random() < 0.3:
        return mutate_bytes(data)
    chunks = png_chunks(data)
    for _ in range(rng.randint(1, 3)):
        at, edit = rng.randrange(len(chunks)), rng.randrange(5)
        if edit <= 1 and chunks[0][0] == b'IHDR':  # width, height (heed's pixel limit), depth, colour type
            field = rng.randrange(4)
            value = (struct.pack('>I', rng.choice(EDGE_INTS)) if field < 2 else
                     bytes([rng.choice([1, 2, 3, 4, 6, 8, 16])]))
            chunks[0][1] = patched(chunks[0][1], [0, 4, 8, 9][field], value)
        elif edit == 2:
            chunks[at][1] = mutate_bytes(chunks[at][1], 1)
        elif edit == 3:
            chunks.insert(rng.randrange(len(chunks) + 1), list(chunks[at]))
        elif len(chunks) > 1:
            del chunks[at]
    bad_checksums = rng.random() < 0.1
    out = b'\x89PNG\r\n\x1a\n' + b''.join(struct.pack('>I', len(payload)) + kind + payload +
                                          struct.pack('>I', zlib.crc32(kind + payload) ^ bad_checksums)
                                          for kind, payload in chunks)
    return out[:rng.randrange(len(out))] if rng.random() < 0.1 else out


def jpeg_frame_header(data):
    """Where the first SOFn payload (precision, height, width, components) starts, or None."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xff:
        if 0xc0 <= data[at + 1] <= 0xcf and data[at + 1] not in (0xc4, 0xc8, 0xcc):
            return at + 4
        at += 2 + struct.unpack_from('>H', data, at + 2)[0]
    return None


def mutate_jpeg(data):
    """Frame header fields (heed checks the size, converts 1, 3 or 4 components), and blind edits."""
    frame = jpeg_frame_header(data)
    if frame is None or rng.random() < 0.4:
        return mutate_bytes(data)
    at, values = rng.choice([(0, [0, 12, 16, 255]), (5, [0, 1, 2, 3, 4, 5, 255]),  # precision, components
                             (7, [0x00, 0x12, 0x21, 0x22, 0x44, 0x41, 0x88, 0xff])])  # first one's sampling
    data = patched(data, frame + at, bytes([rng.choice(values)]))
    if rng.random() < 0.5:  # height or width
        data = patched(data, frame + rng.choice([1, 3]), struct.pack('>H', rng.choice([0, 1, 9, 16384, 65535])))
    return mutate_bytes(data, 1) if rng.random() < 0.3 else data


def mutate_idx_file(data, labels):
    """Header fields (magic, count, rows, cols), lengths, labels out of range."""
    edit = rng.randrange(5)
    if edit == 0:
        value = rng.choice(EDGE_INTS + [27, 29, 2049, 2051, 0x802, 0x804, 0xc03, 0x903])
        return patched(data, rng.choice([0, 4, 8, 12]), struct.pack('>I', value))
    if edit == 1:
        return data[:rng.randrange(len(data))]
    if edit == 2:
        return data + bytes(rng.randint(1, 10))
    if edit == 3 and labels:
        return patched(data, rng.randrange(8, len(data)), bytes([rng.choice([10, 11, 255])]))
    return mutate_bytes(data, rng.randint(1, 2))


def write_idx_mutant(seed_dir, mutant_dir):
    """All four files, one mutated; some gzipped (heed reads NAME.gz before NAME), a stream maybe damaged."""
    shutil.rmtree(mutant_dir, ignore_errors=True)
    mutant_dir.mkdir()
    target, gzipped = rng.choice(IDX_NAMES), rng.random() < 0.4
    for name in IDX_NAMES:
        data = (seed_dir / name).read_bytes()
        data = mutate_idx_file(data, 'labels' in name) if name == target else data
        if gzipped and (name == target or rng.random() < 0.5):
            data = gzip.compress(data, mtime=0)
            data = mutate_bytes(data, 1) if name == target and rng.random() < 0.3 else data
            name += '.gz'
        (mutant_dir / name).write_bytes(data)


MUTATE = {'net': as_bytes(mutate_net_text), 'model': mutate_model, 'png': mutate_png, 'jpeg': mutate_jpeg}


def write_mutant(kind, seed, work):
    if kind == 'idx':
        write_idx_mutant(seed, work / 'mutant-idx')
        return work / 'mutant-idx'
    # images are told apart by their first bytes, not by their names
    suffix = '.bin' if kind in ('png', 'jpeg') and rng.random() < 0.05 else seed.suffix
    mutant = work / ('mutant' + suffix)
    mutant.write_bytes(MUTATE[kind](seed.read_bytes()))
    return mutant


# ---- running heed, judging and keeping what happened ---------------------------------

SANITIZER_REPORT = re.compile(r'ERROR: (Address|Leak)Sanitizer|runtime error:|AddressSanitizer:DEADLYSIGNAL')
OWN_STACK_FRAME = re.compile(r'#\d+ 0x[0-9a-f]+ in (\S+) \S*?\b((?:apps|lib|modules)/[^\s:]+:\d+)')
OWN_UBSAN_SITE = re.compile(r'\b((?:apps|lib|modules)/[^\s:]+:\d+):\d+: runtime error')


def commands_for(kind, mutant, seed, paths):
    """The command lines for a mutant, from COMMANDS."""
    every, one_of = COMMANDS[kind]
    # a 224 x 224 ResNet takes seconds a step under ASan: parse those only
    templates = every + ([] if 'resnet18' in seed.name else [rng.choice(one_of)])
    return [[paths['heed']] + [rng.choice(w.split('|')).format(m=mutant, **paths) for w in t.split()]
            for t in templates if t]


def run_heed(argv, cwd):
    """(exit status, stderr, seconds) of a command, under timeout so that a hang is an outcome too."""
    start = time.monotonic()
    done = subprocess.run(['timeout', '-k', '5', str(RUN_LIMIT_S)] + argv, cwd=cwd, env=RUN_ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return done.returncode, done.stderr.decode('utf-8', 'replace'), time.monotonic() - start


def outcome_of(status, stderr, seconds):
    if SANITIZER_REPORT.search(stderr):
        return 'sanitizer'
    if status == 124 or seconds >= RUN_LIMIT_S:
        return 'timeout'
    if status < 0 or status > 128:
        return 'signal'
    if status == 0:
        return 'ok'
    lines = [line for line in stderr.splitlines() if line.strip()]
    return 'refused' if len(lines) == 1 and lines[0].startswith('heed ') else 'unclear'


def first_own_frame(stderr):
    """The first place in heed's own source a report names (frames in libc, libpng, zlib are passed over)."""
    sites = [(m.start(), '%s %s' % m.groups()) for m in [OWN_STACK_FRAME.search(stderr)] if m]
    sites += [(m.start(), m.group(1)) for m in [OWN_UBSAN_SITE.search(stderr)] if m]
    return min(sites)[1] if sites else ''


def keep_finding(folder, kind, mutant, argv, key, status, stderr):
    """Copies the mutant (a file, or an IDX folder) to a name made from its contents, and describes it."""
    files = sorted(mutant.iterdir()) if mutant.is_dir() else [mutant]
    digest = hashlib.sha1(b''.join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:10]
    reproducer = folder / ('%s-%s%s' % (kind, digest, mutant.suffix))
    if mutant.is_dir():
        shutil.copytree(mutant, reproducer, dirs_exist_ok=True)
    else:
        shutil.copyfile(mutant, reproducer)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()] or ['(nothing on stderr)']
    headline = next((line for line in lines if SANITIZER_REPORT.search(line)), lines[0])
    headline = re.sub(r'^==\d+==| on address .*', '', headline)  # the same report reads the same each time
    command, outcome, frame = key
    description = 'heed %s: %s%s, exit %d: %s' % (command, outcome, ' in ' + frame if frame else '',
                                                  status, headline[:200])
    replay = shlex.join(str(reproducer) if a == str(mutant) else a for a in argv)
    Path('%s.txt' % reproducer).write_text('%s\n$ %s\n\n%s' % (description, replay, stderr))
    print('  new: %s\n    %s' % (reproducer, description), flush=True)
    return reproducer, description


def fuzz_kind(kind, seeds, paths, seconds, findings):
    """Mutates and runs for `seconds`; adds new problems to findings: {(command, outcome, frame): kept}."""
    counts = dict.fromkeys(['runs', 'ok', 'refused', 'problems'], 0)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        seed = rng.choice(seeds)
        mutant = write_mutant(kind, seed, Path(paths['work']))
        for argv in commands_for(kind, str(mutant), seed, paths):
            status, stderr, took = run_heed(argv, paths['work'])
            outcome = outcome_of(status, stderr, took)
            counts['runs'] += 1
            counts[outcome if outcome in counts else 'problems'] += 1
            command = ' '.join(argv[1:3]) if argv[1] == 'data' else argv[1]
            key = (command, outcome, first_own_frame(stderr) if outcome == 'sanitizer' else '')
            if outcome in PROBLEMS and key not in findings:
                findings[key] = keep_finding(Path(paths['findings']), kind, mutant, argv, key, status, stderr)
    print('%s: %d runs in %.0f s: %d ok, %d refused, %d problems' % (kind, counts['runs'], time.monotonic() - start,
          counts['ok'], counts['refused'], counts['problems']), flush=True)
    return counts


# ---- start-up and the command line ------------------------------------------------

def fail(message):
    print('fuzz_loaders: ' + message, file=sys.stderr)
    sys.exit(2)


def cut_idx(folder, train_items=300, test_items=100):
    """The first items of Fashion-MNIST, as plain IDX files with their counts rewritten."""
    folder.mkdir()
    for name in IDX_NAMES:
        items = train_items if name.startswith('train') else test_items
        header, item_size = (16, 784) if 'images' in name else (8, 1)
        with gzip.open('/usr/share/datasets/fashion-mnist/%s.gz' % name) as f:
            data = f.read(header + items * item_size)
        (folder / name).write_bytes(patched(data, 4, struct.pack('>I', items)))


def exif_tiff(big_endian, orientation):
    """EXIF's TIFF structure: IFD0 with a Make tag, then Orientation (tag 0x0112)."""
    e = '>' if big_endian else '<'
    entries = struct.pack(e + 'HHI4s', 0x010f, 2, 4, b'hee\0') + struct.pack(e + 'HHIHH', 0x0112, 3, 1, orientation, 0)
    return (b'MM' if big_endian else b'II') + struct.pack(e + 'HI', 42, 8) + struct.pack(e + 'H', 2) + entries + b'\0' * 4


def with_exif(path, orientation):
    """The image at path with an EXIF orientation: an APP1 after a JPEG's SOI, an eXIf chunk after a PNG's IHDR."""
    data, tiff = path.read_bytes(), exif_tiff(orientation % 2, orientation)
    if data[:2] == b'\xff\xd8':
        return data[:2] + b'\xff\xe1' + struct.pack('>H', 2 + 6 + len(tiff)) + b'Exif\0\0' + tiff + data[2:]
    chunk = struct.pack('>I', len(tiff)) + b'eXIf' + tiff + struct.pack('>I', zlib.crc32(b'eXIf' + tiff))
    return data[:33] + chunk + data[33:]  # signature 8, IHDR 25


def make_seeds(heed, folder, image):
    """Seeds made by the heed under test (so they are what it writes), in folder; returns them by kind."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cut_idx(folder / 'idx')
    (folder / 'tiny.net').write_text(TINY_NET)
    (folder / 'tinyram.net').write_text(TINY_RAM_NET)
    # epoch 1 of 2 leaves the checkpoint NAME.heed.ckpt that --resume goes on from
    commands = ['train --net %s.net --data %s --data-dir idx --out %s.heed --epochs 2 --stop-after 1 --limit 256'
                ' --test-limit 64 --batch 32 --threads 1' % (name, dataset, name)
                for name, dataset in (('tiny', 'fmnist'), ('tinyram', 'fmnist-cluttered60'))]
    # colour images, from heed's own writers
    commands += ['classify --model tiny.heed --overlay images --format %s %s' % (f, image) for f in ('png', 'jpg')]
    for command in commands:
        status, stderr, _ = run_heed([heed] + command.split(), folder)
        if status != 0:
            fail('start-up failed: %s %s\n%s' % (heed, command, stderr[-3000:]))
    # photos turned by their EXIF orientation (the decoders turn them upright)
    for made in sorted(folder.glob('images/*')):
        (folder / 'images' / ('exif6-' + made.name)).write_bytes(with_exif(made, 6))
        (folder / 'images' / ('exif7-' + made.name)).write_bytes(with_exif(made, 7))
    repo, made = Path.cwd(), sorted(folder.glob('tiny*.heed*'))
    return {'net': sorted(repo.glob('nets/*.net')) + sorted(folder.glob('*.net')),
            'model': sorted(repo.glob('models/*.heed')) + made,
            'png': sorted(repo.glob('images/*.png')) + sorted(folder.glob('images/*.png')),
            'jpeg': sorted(repo.glob('images/*.jpg')) + sorted(folder.glob('images/*.jpg')),
            'idx': [folder / 'idx']}


def parse_args():
    parser = argparse.ArgumentParser(prog='python3 scripts/fuzz_loaders.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--heed', default='build/san/heed',
                        help='the heed to test [%(default)s: the sanitizer build, make SAN=1 build/san/heed]')
    parser.add_argument('--kinds', default=','.join(KINDS), help='comma-separated kinds of file [%(default)s]')
    parser.add_argument('--seconds', type=float, default=60, help='fuzzing time per kind [%(default)s]')
    parser.add_argument('--seed', type=int, default=1,
                        help='random seed; the same seed, the same mutants [%(default)s]')
    parser.add_argument('--out', default='/tmp/heed-fuzz', help='work files, seeds and findings/ [%(default)s]')
    args = parser.parse_args()
    args.kinds = args.kinds.split(',')
    if set(args.kinds) - set(KINDS):
        parser.error('--kinds: %s are not among %s' % (','.join(set(args.kinds) - set(KINDS)), ','.join(KINDS)))
    return args


def main():
    args = parse_args()
    if not Path('nets/README.md').is_file():
        fail('run this from the heed repository root: nets/, images/ and models/ hold the seeds')
    if not os.access(args.heed, os.X_OK):
        fail('no executable %s: build it with make SAN=1 build/san/heed, or name one with --heed' % args.heed)
    out = Path(args.out).resolve()
    # commands run in OUT/work so that whatever they write lands there, not in the repository
    paths = {'heed': str(Path(args.heed).resolve()), 'work': str(out / 'work'), 'seeds': str(out / 'seeds'),
             'findings': str(out / 'findings'), 'image': str(Path('images/test-00001-Pullover.png').resolve())}
    for folder in ('work', 'findings'):
        Path(paths[folder]).mkdir(parents=True, exist_ok=True)
    seeds = make_seeds(paths['heed'], out / 'seeds', paths['image'])
    findings, rows = {}, []
    for kind in args.kinds:
        rng.seed('%d:%s' % (args.seed, kind))  # a kind's mutants do not depend on which other kinds run
        rows.append((kind, fuzz_kind(kind, seeds[kind], paths, args.seconds, findings)))
    print('\n%-6s %7s %7s %8s %9s' % ('kind', 'runs', 'ok', 'refused', 'problems'))
    for kind, c in rows:
        print('%-6s %7d %7d %8d %9d' % (kind, c['runs'], c['ok'], c['refused'], c['problems']))
    for reproducer, description in findings.values():
        print('\n%s\n  %s' % (reproducer, description))
    return 1 if any(c['problems'] for _, c in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
