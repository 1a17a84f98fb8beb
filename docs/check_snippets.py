#!/usr/bin/env python3
"""check_snippets.py -- every C code block of the docs compiles and runs.

usage: check_snippets.py --root SRC --lib LIBFILE --out DIR [--cc CC ...]
                         [--cflag FLAG ...] [--header FILE ...]
                         [--expect-fail TEXT ...] [MARKDOWN ...]

The convention (docs/contributing.md, "Code blocks"): every ```c block in
README.md and docs/*.md (or the MARKDOWN files given) is either
  - a complete program (it has `int main`): compiled against the built
    library (LIBFILE, the directories of the --header files on the include
    path) with warnings as
    errors, and run in a directory of its own under DIR; it must exit 0
    within 60 s; or
  - an excerpt: its first line is `/* excerpt of PATH */` with PATH a file
    of the repository (relative to SRC), and the block's other non-blank
    lines appear in PATH in the same order (compared with runs of white
    space collapsed; a trailing /* comment */ or // comment may differ,
    the code before it may not). A PATH under docs/examples/ is compiled
    and run like a complete program, once.
Anything else fails, as does a block that does not compile, fails or is
not found. ```sh and other blocks are not checked.

Exit 0 if every block passes, 1 with one `file:line: reason` per failure.
With --expect-fail the result is inverted (it shows the check can fail):
exit 0 only if the check fails and its report contains every TEXT.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import shlex
import subprocess
import sys

from check_report import verdict

FENCE_OPEN = re.compile(r"^```c\s*$")
FENCE_CLOSE = re.compile(r"^```\s*$")
EXCERPT = re.compile(r"^\s*/\*\s*excerpt of\s+(\S+?)\s*\*/\s*$")
MAIN = re.compile(r"\bint\s+main\s*\(")
TRAILING_COMMENT = re.compile(r"\s*(/\*.*\*/|//.*)$")


def blocks(path):
    """(first code line number, list of lines) for each ```c block."""
    out, cur, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if cur is None:
                if FENCE_OPEN.match(line):
                    cur, start = [], n + 1
            elif FENCE_CLOSE.match(line):
                out.append((start, cur))
                cur = None
            else:
                cur.append(line)
    if cur is not None:
        out.append((start, cur + ["(unclosed ``` block)"]))
    return out


def norm(line):
    return " ".join(line.split())


def code_of(line):
    """The line without its trailing comment, white space collapsed."""
    return norm(TRAILING_COMMENT.sub("", line))


def same_line(want, got):
    """A block line matches a file line if they are equal (white space
    collapsed), or if their code is equal once each line's trailing comment
    is dropped: the docs may annotate a line differently, not change it."""
    w = norm(want)
    if w == norm(got):
        return True
    code = code_of(want)
    return bool(code) and code == code_of(got)


def lines_in_order(excerpt, file_lines):
    """None if every excerpt line is found in order, else the first missing one."""
    i = 0
    for want in excerpt:
        if not norm(want):
            continue
        while i < len(file_lines):
            i += 1
            if same_line(want, file_lines[i - 1]):
                break
        else:
            return want
    return None


class Checker:
    def __init__(self, args):
        self.args = args
        self.problems = []
        self.ran = {}  # docs/examples file -> future of its run
        self.count = 0
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2)

    def compile_and_run(self, name, source_text):
        """Compile and run one program; return an error text or None."""
        a = self.args
        work = os.path.join(os.path.abspath(a.out), name)
        os.makedirs(work, exist_ok=True)
        src = os.path.join(work, "prog.c")
        exe = os.path.join(work, "prog")
        with open(src, "w", encoding="utf-8") as f:
            f.write(source_text)
        lib = os.path.abspath(a.lib)
        cmd = list(a.cc) + ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                            "-D_POSIX_C_SOURCE=200809L"] + a.cflag
        cmd += list(dict.fromkeys("-I" + os.path.dirname(os.path.abspath(h)) for h in a.header))
        cmd += [src, "-o", exe, lib, "-Wl,-rpath," + os.path.dirname(lib), "-lm"]
        c = subprocess.run(cmd, capture_output=True, text=True)
        if c.returncode != 0:
            return "does not compile (%s):\n%s" % (" ".join(map(shlex.quote, cmd)), c.stdout + c.stderr)
        try:
            r = subprocess.run([exe], cwd=work, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "did not finish in 60 s"
        if r.returncode != 0:
            return "exits with status %d:\n%s" % (r.returncode, (r.stdout + r.stderr)[-2000:])
        return None

    def check_block(self, md, line, code):
        where = "%s:%d" % (os.path.relpath(md, self.args.root), line)
        tag = re.sub(r"[^A-Za-z0-9]+", "_", where)
        first = next((l for l in code if l.strip()), "")
        m = EXCERPT.match(first)
        if m:
            rel = m.group(1)
            path = os.path.join(self.args.root, rel)
            if not os.path.isfile(path):
                return "%s: excerpt of %s, which is not a file of the repository" % (where, rel)
            with open(path, encoding="utf-8") as f:
                file_text = f.read()
            missing = lines_in_order(code[code.index(first) + 1:], file_text.splitlines())
            if missing is not None:
                return ("%s: excerpt of %s, but this line is not in it (after the lines before it): %s"
                        % (where, rel, missing.strip()))
            if rel.startswith("docs/examples/"):
                if rel not in self.ran:
                    self.ran[rel] = self.pool.submit(self.compile_and_run,
                                                     re.sub(r"[^A-Za-z0-9]+", "_", rel), file_text)
                run = self.ran[rel]
                return lambda: ("%s: excerpt of %s, which %s" % (where, rel, run.result())
                                if run.result() else None)
            return None
        if MAIN.search("\n".join(code)):
            run = self.pool.submit(self.compile_and_run, tag, "\n".join(code) + "\n")
            return lambda: ("%s: a complete program that %s" % (where, run.result())
                            if run.result() else None)
        return ("%s: a ```c block must be a complete program (with int main) or start with "
                "/* excerpt of FILE */ naming a repository file that holds its lines" % where)

    def run(self, markdown):
        """Check every block: programs compile and run in parallel; the
        report keeps the order of the files."""
        results = []
        for md in markdown:
            for line, code in blocks(md):
                self.count += 1
                results.append(self.check_block(md, line, code))
        for r in results:
            err = r() if callable(r) else r
            if err:
                self.problems.append(err)
        self.pool.shutdown()
        return self.problems


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="the source tree")
    p.add_argument("--lib", required=True, help="the built libscratchgrad.so")
    p.add_argument("--out", required=True, help="a directory for the programs")
    p.add_argument("--cc", nargs="+", default=["cc"])
    p.add_argument("--cflag", action="append", default=[], help="an extra compiler flag")
    p.add_argument("--header", action="append", default=[], help="a public header (its directory is searched)")
    p.add_argument("--expect-fail", nargs="+", metavar="TEXT", default=None)
    p.add_argument("markdown", nargs="*")
    args = p.parse_args()
    args.root = os.path.abspath(args.root)
    markdown = args.markdown or ([os.path.join(args.root, "README.md")] +
                                 sorted(glob.glob(os.path.join(args.root, "docs", "*.md"))))
    checker = Checker(args)
    problems = checker.run(markdown)
    return verdict("check_snippets", problems, args.expect_fail,
                   "%d of %d C blocks fail" % (len(problems), checker.count),
                   "%d C blocks in %d files: every one compiles and runs, or is an excerpt found in its file"
                   % (checker.count, len(markdown)),
                   "the broken blocks fail as they should")


if __name__ == "__main__":
    sys.exit(main())
