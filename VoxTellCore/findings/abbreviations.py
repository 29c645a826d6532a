"""Report shorthand -> words, and image references out, before the rules read a report.

The prompts go to a text encoder that reads words, so "RUL" becomes "right upper lobe"
and "trace L effusion" becomes "trace left effusion". Only unambiguous shorthand is
expanded: "PE" (embolism or effusion) and "LAD" (artery or adenopathy) stay as written.
"""

from __future__ import annotations

import re

_LOBES = {"rul": "right upper lobe", "rml": "right middle lobe", "rll": "right lower lobe",
          "lul": "left upper lobe", "lll": "left lower lobe"}
_WORDS = {"ptx": "pneumothorax", "ggo": "ground-glass opacity", "ggos": "ground-glass opacities",
          "bilat": "bilateral", "nl": "normal", "abd": "abdomen", "ett": "endotracheal tube",
          "ngt": "nasogastric tube", "ogt": "orogastric tube", "svc": "superior vena cava", "ivc": "inferior vena cava",
          "ln": "lymph node", "lns": "lymph nodes", "rt": "right", "lt": "left",
          # abdomen and pelvis
          "aaa": "abdominal aortic aneurysm", "uvj": "ureterovesical junction", "upj": "ureteropelvic junction",
          "cbd": "common bile duct", "sma": "superior mesenteric artery", "smv": "superior mesenteric vein",
          "ipmn": "intraductal papillary mucinous neoplasm", "ipmns": "intraductal papillary mucinous neoplasms",
          "bph": "benign prostatic hyperplasia", "rlq": "right lower quadrant", "llq": "left lower quadrant",
          "ruq": "right upper quadrant", "luq": "left upper quadrant", "hcc": "hepatocellular carcinoma",
          "fnh": "focal nodular hyperplasia", "pyelo": "pyelonephritis", "hydro": "hydronephrosis",
          "gb": "gallbladder", "panc": "pancreas", "subcm": "subcentimeter", "prob": "probably", "poss": "possibly",
          "fx": "fracture", "fxs": "fractures", "amt": "amount"}
# "c/w steatosis", "collection = abscess", "stranding -> appendagitis": shorthand for an interpretation.
_CONSISTENT_WITH = re.compile(r"\bc/w\b|\s+(?:=|->|=>|\u2192)\s+(?=[a-z])", re.IGNORECASE)
# LI-RADS and PI-RADS categories as written in full: "LR-5" -> "LI-RADS 5".
_RADS = re.compile(r"\bLR-?(\d|M|TIV)\b")
_ABBREVIATION = re.compile(r"\b(" + "|".join(sorted({**_LOBES, **_WORDS}, key=len, reverse=True)) + r")\b",
                           re.IGNORECASE)
# "NG tube", "OG tube", "ET tube"; a lone capital R or L as a side ("L effusion", "R: small effusion"), never "L1".
_TUBE = re.compile(r"\b(NG|OG|ET)(?= tube)")
_SIDE_LETTER = re.compile(r"(?<![\w/.-])([RL])(?![\w/.'-])")
# "(series 3, image 45)", "series 4 image 88", "image 120", "(se 3, im 140)", "(image 54)"; not "images. 2.3 cm".
IMAGE_REFERENCE = re.compile(
    r"\s*\(?\b(?:(?:series|se|ser)\.?\s*#?\s*\d+\s*[,/;]?\s*)?(?:images?|img\.?|im\.?|slice)\s*#?\s*\d+(?:/\d+)?"
    r"(?:\s*(?:-|to)\s*\d+)?\)?|\s*\(\s*(?:series|se)\.?\s*\d+\s*\)", re.IGNORECASE)


# "w/", "w/o", "s/p"; "plural effusion", a dictation software's "pleural effusion".
_SLASHED = {"w/o": "without", "w/": "with", "s/p": "status post"}
_SLASHED_WORD = re.compile(r"(?<![\w/])(w/o|w/|s/p)(?=\s|$)", re.IGNORECASE)
_MISHEARD = re.compile(r"\bplural (effusions?|fluid|thickening|space)\b", re.IGNORECASE)


def expand_abbreviations(text: str) -> str:
    text = _SLASHED_WORD.sub(lambda m: _SLASHED[m.group(1).lower()], text)
    text = _MISHEARD.sub(r"pleural \1", text)
    text = _TUBE.sub(lambda m: {"NG": "nasogastric", "OG": "orogastric", "ET": "endotracheal"}[m.group(1)], text)
    text = _ABBREVIATION.sub(lambda m: _LOBES.get(m.group(1).lower()) or _WORDS[m.group(1).lower()], text)
    text = _CONSISTENT_WITH.sub(lambda m: "consistent with" if "/" in m.group(0) else ", consistent with ", text)
    text = _RADS.sub(r"LI-RADS \1", text)
    return _SIDE_LETTER.sub(lambda m: "right" if m.group(1) == "R" else "left", text)


def strip_image_references(text: str) -> str:
    return IMAGE_REFERENCE.sub("", text)
