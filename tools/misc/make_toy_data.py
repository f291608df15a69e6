"""Generate the built-in toy data (normally generated on first use) into a folder.

    python tools/misc/make_toy_data.py [WORLD ...] [--out data/toy]

Worlds: cls, seg, coco, nyu, uda, seq (default: all). Output is deterministic.
"""
import argparse
import os.path as osp

from mmmask.datasets.toy import WORLDS, ensure_toy_data, generate


def main():
    parser = argparse.ArgumentParser(description='Generate the built-in toy datasets')
    parser.add_argument('worlds', nargs='*', default=list(WORLDS), help=f'any of {WORLDS}')
    parser.add_argument('--out', default='data/toy',
                        help='parent folder: data/toy/<world> (a link into the cache by default)')
    parser.add_argument('--copy', action='store_true',
                        help='write real files into --out instead of linking to the cache')
    args = parser.parse_args()
    for world in args.worlds:
        target = osp.join(args.out, world)
        path = generate(world, target) if args.copy else ensure_toy_data(world, target)
        print(f'{world}: {path}')


if __name__ == '__main__':
    main()
