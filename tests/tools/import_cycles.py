#!/usr/bin/env python3
"""Report import cycles among a crate's modules: the `use crate::...` / `use super::...` / inline
`crate::x::` edges between its files. Exits 1 when a cycle exists. Usage: import_cycles.py <crate>/src
Run by the contract test `contract_no_import_cycles` (tests/it/contracts.rs)."""
import os, re, sys

root = sys.argv[1].rstrip('/')
mods = {}
for dp, _, fs in os.walk(root):
    if '/bin' in dp[len(root):]:
        continue
    for f in fs:
        if not f.endswith('.rs'):
            continue
        rel = os.path.relpath(os.path.join(dp, f), root)[:-3]
        parts = rel.split('/')
        if parts[-1] in ('mod', 'lib', 'main'):
            parts = parts[:-1]
        mods['::'.join(parts)] = os.path.join(dp, f)

def strip(src):
    src = re.sub(r'//[^\n]*', '', src)
    # drop #[cfg(test)] mod tests { ... } blocks (test-only edges)
    m = re.search(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{', src)
    if m:
        src = src[:m.start()]
    return src

def resolve(path):
    """Longest known module prefix of a path."""
    if len(path) >= 1 and path[0] in reexports and '::'.join(path[:1]) not in mods:
        path = reexports[path[0]] + path[1:]
    parts = path
    while parts:
        name = '::'.join(parts)
        if name in mods:
            return name
        parts = parts[:-1]
    return None

def expand(tree):
    """Expand a use tree `a::{b, c::{d}}` into paths."""
    tree = tree.strip()
    m = re.match(r'^(.*?)\{(.*)\}$', tree, re.S)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ''
    for ch in inner:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            items.append(cur); cur = ''
        else:
            cur += ch
    items.append(cur)
    out = []
    for it in items:
        if it.strip():
            out += [prefix + p for p in expand(it)]
    return out

# names the crate root re-exports (`pub use m::{A, B}` in lib.rs) resolve to their module
reexports = {}
for u in re.findall(r'\bpub\s+use\s+([^;]+);', strip(open(mods['']).read()), re.S):
    for p in expand(re.sub(r'\s+', '', u)):
        segs = p.split('::')
        if len(segs) >= 2 and segs[0] not in ('crate', 'self', 'super'):
            reexports[segs[-1]] = segs[:-1]

edges = {m: set() for m in mods}
for mod, path in mods.items():
    src = strip(open(path).read())
    here = mod.split('::') if mod else []
    paths = []
    for u in re.findall(r'\buse\s+([^;]+);', src, re.S):
        paths += expand(re.sub(r'\s+', '', u))
    paths += re.findall(r'\b((?:crate|super)(?:::\w+)+)', src)
    for p in paths:
        p = re.sub(r'\bas\w+$', '', p)
        segs = [s for s in p.split('::') if s]
        if not segs:
            continue
        is_modrs = path.endswith('mod.rs') or path.endswith('lib.rs')
        base = here if is_modrs else here  # module path of this file
        if segs[0] == 'crate':
            target = segs[1:]
        elif segs[0] == 'super':
            b = list(base)
            while segs and segs[0] == 'super':
                b = b[:-1]; segs = segs[1:]
            target = b + segs
        elif segs[0] == 'self':
            target = list(base) + segs[1:]
        else:
            continue
        t = resolve(target)
        if t is not None and t != mod and not mod.startswith(t + '::') if t else False:
            edges[mod].add(t)
        elif t is not None and t != mod and t == '':
            pass  # the crate root's re-exports: resolve through them is not tracked
        elif t is not None and t != mod and mod.startswith(t + '::'):
            edges[mod].add(t)  # a child using its parent
# child modules declared with `mod x;` are not edges; a parent using `x::` is (caught above
# only via `self::`/paths); catch plain `x::Item` uses of declared children:
for mod, path in mods.items():
    src = strip(open(path).read())
    if not (path.endswith('mod.rs') or path.endswith('lib.rs')):
        continue
    for child in re.findall(r'\bmod\s+(\w+)\s*;', src):
        full = (mod + '::' + child) if mod else child
        if re.search(r'(?<![\w:])' + child + r'::', src):
            edges[mod].add(full)

# the crate root only declares and re-exports
edges.pop('', None)
for m in edges:
    edges[m].discard('')
for m in sorted(edges):
    print(f"{m or '(root)'} -> {', '.join(sorted(edges[m])) or '-'}")

# Tarjan SCC
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            sc(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1:
            sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in edges:
    if v not in index:
        sc(v)
print('CYCLES:' if sccs else 'no cycles')
for c in sccs:
    print('  ', ' <-> '.join(c))
sys.exit(1 if sccs else 0)
