"""Convert COCO instance annotations into mmpretrain ``MultiLabelDataset`` files.

Each image becomes ``{"img_path": <file_name>, "gt_label": [class indices]}``
with the indices of the categories it contains (classes in category-id order,
crowd boxes included); images without annotations are dropped unless
``--keep-empty``. Example (MS-COCO 2014, the split of the paper's Table 7)::

    python tools/dataset_converters/coco_to_multilabel.py \
        data/coco/annotations/instances_train2014.json \
        data/coco/annotations/multilabel_train2014.json
"""
import argparse
import json


def coco_to_multilabel(coco, keep_empty=False):
    """COCO instances dict -> ``{'metainfo': {'classes': ...}, 'data_list': [...]}``."""
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise ValueError(f'coco must be a COCO instances dict with {key!r}')
    categories = sorted(coco['categories'], key=lambda category: category['id'])
    index_of = {category['id']: index for index, category in enumerate(categories)}
    labels = {image['id']: set() for image in coco['images']}
    for ann in coco['annotations']:
        labels[ann['image_id']].add(index_of[ann['category_id']])
    data_list = [dict(img_path=image['file_name'], gt_label=sorted(labels[image['id']]))
                 for image in coco['images'] if keep_empty or labels[image['id']]]
    return dict(metainfo=dict(classes=[category['name'] for category in categories]),
                data_list=data_list)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('coco_json', help='COCO instances json')
    parser.add_argument('out_json', help='MultiLabelDataset annotation file to write')
    parser.add_argument('--keep-empty', action='store_true',
                        help='keep images without objects (empty label list)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with open(args.coco_json, encoding='utf-8') as f:
        converted = coco_to_multilabel(json.load(f), keep_empty=args.keep_empty)
    with open(args.out_json, 'w', encoding='utf-8') as f:
        json.dump(converted, f)
    print(f'{len(converted["data_list"])} images, {len(converted["metainfo"]["classes"])} '
          f'classes -> {args.out_json}')


if __name__ == '__main__':
    main()
