# DeepLabV2 with only the atrous rates 6 and 12 in the classifier: what the DeepLabV2 of earlier
# UDA code (AdaptSegNet and its descendants, incl. the DACS baseline) actually computes, because its
# classifier returns inside the loop over the rates. DAFormer uses it for comparisons with them.
_base_ = ['./deeplabv2_r101.py']
model = dict(decode_head=dict(dilations=(6, 12)))
