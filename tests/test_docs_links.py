"""Every relative link in README.md and docs/**/*.md resolves.

A link resolves when its file (relative to the linking file) exists and,
for a ``#anchor``, the target markdown file has a heading whose GitHub slug
is the anchor (duplicates get ``-1``, ``-2``, ... as on GitHub). Links in
fenced code blocks and inline code are not links; http(s) and mailto links
are not checked. Images count as links (the file must exist).
"""
import glob
import os.path as osp
import re
from urllib.parse import unquote

from helpers import REPO

MAX_DOC_LINES = 500

_FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
_ATX = re.compile(r'^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$')
_CODE_SPAN = re.compile(r'(`+)(?!`).*?(?<!`)\1(?!`)')
# [text](target) and ![alt](target); the text may hold one level of [...]
# The text may span lines of one paragraph (no blank line in it).
_INLINE = re.compile(
    r'!?\[(?:[^\[\]\n]|\n(?![ \t]*\n)|\[[^\[\]]*\])*\]'
    r'\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)'
    r'(?:\s+(?:"[^"]*"|\'[^\']*\'|\([^)]*\)))?\s*\)')
_REFDEF = re.compile(r'^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)')
_HTML_ID = re.compile(r'<a\s[^>]*?(?:name|id)\s*=\s*["\']([^"\']+)["\']', re.I)
_SKIP = ('http://', 'https://', 'mailto:', 'ftp://', 'data:')


def _doc_files():
    files = [osp.join(REPO, 'README.md')]
    files += sorted(glob.glob(osp.join(REPO, 'docs', '**', '*.md'),
                              recursive=True))
    return [f for f in files if osp.isfile(f)]


def _prose_lines(text):
    """(line number, line) of every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif (m and m.group(1)[0] == fence[0]
              and len(m.group(1)) >= len(fence)
              and not line[m.end():].strip()):
            fence = None


def github_slug(heading):
    """GitHub's anchor of a heading's text."""
    text = _CODE_SPAN.sub(lambda m: m.group(0).strip('`').strip(), heading)
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)  # links: text
    text = re.sub(r'<[^>]+>', '', text)  # inline html
    text = text.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


_anchor_cache = {}


def anchors(path):
    """The set of anchors a markdown file defines."""
    if path not in _anchor_cache:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        seen, found = {}, set()
        for _, line in _prose_lines(text):
            found.update(_HTML_ID.findall(line))
            m = _ATX.match(line)
            if not m:
                continue
            slug = github_slug(m.group(2) or '')
            if slug in seen:
                seen[slug] += 1
                found.add(f'{slug}-{seen[slug]}')
            else:
                seen[slug] = 0
                found.add(slug)
        _anchor_cache[path] = found
    return _anchor_cache[path]


def links(path):
    """(line number, target) of every link of a markdown file."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    prose = [''] * len(text.splitlines())
    for number, line in _prose_lines(text):
        m = _REFDEF.match(line)
        if m:
            yield number, m.group(1).strip('<>')
        prose[number - 1] = _CODE_SPAN.sub('', line)
    joined = '\n'.join(prose)
    for m in _INLINE.finditer(joined):
        yield joined.count('\n', 0, m.start(1)) + 1, m.group(1).strip('<>')


def broken_links(path):
    broken = []
    for number, target in links(path):
        if not target or target.lower().startswith(_SKIP):
            continue
        file_part, _, anchor = target.partition('#')
        file_part = unquote(file_part.split('?')[0])
        dest = (path if not file_part else
                osp.normpath(osp.join(osp.dirname(path), file_part)))
        where = f'{osp.relpath(path, REPO)}:{number}: {target}'
        if not osp.exists(dest):
            broken.append(f'{where} (no such file)')
        elif anchor and dest.endswith('.md') and osp.isfile(dest):
            if unquote(anchor) not in anchors(dest):
                broken.append(f'{where} (no heading #{anchor} in '
                              f'{osp.relpath(dest, REPO)})')
    return broken


def test_slugs_follow_github():
    assert github_slug('3. CUDA') == '3-cuda'
    assert github_slug("2d. Real images: tree crowns under mmdet's SGD "
                       'recipes') == (
                           '2d-real-images-tree-crowns-under-mmdets-sgd-'
                           'recipes')
    assert github_slug('Diagnosis (stats hook, `tools/diagnose_gate.py`)'
                       ) == 'diagnosis-stats-hook-toolsdiagnose_gatepy'
    assert github_slug('A **bold** [link](x.md) — dash') == (
        'a-bold-link--dash')


def test_duplicate_headings_get_numbered(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Reading\n\n## Reading\n\n```\n# Reading\n```\n'
                    '### Reading\n', encoding='utf-8')
    assert anchors(str(page)) == {'reading', 'reading-1', 'reading-2'}


def test_links_in_code_are_not_links(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Top\n\n`[a](missing.md)`\n\n```md\n[b](missing.md)\n'
                    '```\n\n[c](#top) [d](page.md#top) ![e](missing.png)\n'
                    'a [link over\ntwo lines](#nowhere) and [not\n\na](x.md)\n',
                    encoding='utf-8')
    assert list(links(str(page))) == [
        (9, '#top'), (9, 'page.md#top'), (9, 'missing.png'),
        (11, '#nowhere')]
    assert len(broken_links(str(page))) == 2


def test_every_relative_link_resolves():
    broken = [b for path in _doc_files() for b in broken_links(path)]
    assert not broken, ('broken links (file: link):\n' + '\n'.join(broken))


def test_no_docs_page_exceeds_the_line_limit():
    long = []
    for path in glob.glob(osp.join(REPO, 'docs', '**', '*.md'),
                          recursive=True):
        with open(path, encoding='utf-8') as f:
            n = sum(1 for _ in f)
        if n > MAX_DOC_LINES:
            long.append(f'{osp.relpath(path, REPO)}: {n} lines')
    assert not long, (f'pages over {MAX_DOC_LINES} lines:\n' +
                      '\n'.join(long))
