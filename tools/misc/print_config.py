"""Print the fully merged config (after ``_base_`` inheritance and --cfg-options).

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--save-path merged.py]
"""
import argparse

from mmengine.config import Config, DictAction


def main():
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--save-path', help='also save the merged config (.py/.json/.yaml)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path:
        cfg.dump(args.save_path)
        print(f'Saved to {args.save_path}')


if __name__ == '__main__':
    main()
