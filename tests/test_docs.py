"""README.md and docs/: local links resolve, and the files and configs they name exist."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / 'docs').glob('*.md'))
PAGES = ['get_started', 'own_data', 'configs', 'outputs', 'metrics', 'adding_a_method',
         'deployment', 'interactive']


def test_readme_links_every_page():
    readme = (REPO / 'README.md').read_text()
    for page in PAGES:
        assert f'](docs/{page}.md)' in readme
    assert sorted(p.stem for p in DOCS) == sorted(PAGES)


@pytest.mark.parametrize('doc', DOCS, ids=[p.name for p in DOCS])
def test_links_and_named_files_exist(doc):
    text = doc.read_text()
    for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', text):
        if '://' not in target:
            assert (doc.parent / target).exists(), f'{doc.name}: broken link {target}'
    # Repository files named in backticks: tools, configs (but not the examples' own files).
    for path in re.findall(r'`((?:tools|configs|mmsam|projects/seqsam_lora)/[\w./-]+\.(?:py|md))`',
                           text):
        assert (REPO / path).exists(), f'{doc.name} names {path}, which does not exist'


def test_demo_time_is_the_same_measured_one_everywhere():
    """README and get_started give `make demo` one time, with the run that measured it."""
    pages = {name: (REPO / name).read_text() for name in ('README.md', 'docs/get_started.md')}
    for name, text in pages.items():
        flat = ' '.join(text.split())
        minutes = re.findall(r'`make demo` takes about (\d+) minutes|It takes about (\d+) minutes',
                             flat)
        assert {m for pair in minutes for m in pair if m} == {'17'}, name
        assert '17 min 21 s measured with `time make demo` on a 2-core Xeon' in flat, name
    assert 'prints both tables' not in pages['docs/get_started.md']  # it trains three models
