"""mmsam: Segment Anything adaptations for medical image segmentation, the OpenMMLab way."""
from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name):
    lines = Path(__file__).with_name('requirements').joinpath(name).read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines if line.split('#')[0].strip()]


def read_version():
    namespace = {}
    exec(Path(__file__).with_name('mmsam').joinpath('version.py').read_text(), namespace)
    return namespace['__version__']


setup(
    name='mmsam',
    version=read_version(),
    description='Segment Anything adaptations for medical image segmentation (OpenMMLab style)',
    long_description=Path(__file__).with_name('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('mmsam', 'mmsam.*')),
    # published split lists, found with importlib.resources (mmsam.datasets.splits)
    package_data={'mmsam.datasets.splits': ['hsam/*.txt', 'hsam/*.md']},
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'mim': read_requirements('mminstall.txt')},
    license='Apache License 2.0',
)
