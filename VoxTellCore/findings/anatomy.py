"""The structures a finding can be in, as data: name for a prompt, words that name it, body region.

Used to carry an organ header ("Spleen:", "Kidneys:") into the prompt of every finding
under it, to tell a restatement of a finding from another finding of the same kind in
another organ, and to pick the chest or the abdominal/pelvic category table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHEST = "chest"
# A vertebra ("L2", "T12"), not an MR sequence ("T2 hyperintense", "T1-weighted", "T2 shading", "T2*", "T1 and T2").
VERTEBRA = (r"(?<!on )(?<!on a )[CTLS]\d{1,2}\b(?![ -](?:hyper|hypo|iso|weighted|signal|sequence|post|pre|fat|bright|dark|"
            r"shading|shine|intens|in-phase|opposed|map)|\*|(?<=T[12]) and T[12]\b)")
ABDOMEN_PELVIS = "abdomen/pelvis"


@dataclass(frozen=True)
class Structure:
    name: str  # as written into a prompt: "kidney" -> "in the right kidney"
    words: str  # regular expression of the words that name it (case-insensitive, from a word start)
    region: str | None  # CHEST, ABDOMEN_PELVIS, or None where the words alone do not say
    paired: bool = False  # takes the side its sentence states


# More specific structures first: "ileocolic lymph node" is a node, "portal vein" not the liver, "gallbladder" not the
# bladder.
STRUCTURES: tuple[Structure, ...] = (
    Structure("lymph node", r"lymph|nodes?\b|nodal\b|adenopath", None),
    Structure("pleura", r"pleura|hydrothora|hemothora|haemothora|empyema|pneumothora", CHEST),
    Structure("pericardium", r"pericard", CHEST),
    Structure("lung", r"lungs?\b|pulmonar|lobes? of the (?:right|left) lung|(?:upper|middle|lower) lobes?\b|"
                      r"lingula|bibasilar|bronch|alveol|atelecta|emphysem(?!atous (?:pyel|cholecyst|cystitis|gastritis))", CHEST),
    Structure("heart", r"heart\b|cardi|coronar|atri(?:um|al)\b|ventric", CHEST),
    # the renal, splenic or hepatic hilum is the organ's, not the lung's
    Structure("mediastinum", r"mediastin|(?<!renal )(?<!splenic )(?<!hepatic )hil(?:um|ar)\b|subcarinal|paratracheal|"
                             r"thymus", CHEST),
    Structure("esophagus", r"o?esophag|hiatal|hiatus hernia", None),
    Structure("thyroid gland", r"thyroid", CHEST),
    Structure("portal vein", r"portal (?:vein|venous system|branch)|(?:branch|branches) of the portal vein",
              ABDOMEN_PELVIS),
    Structure("aorta", r"(?:abdominal|infrarenal|suprarenal|juxtarenal) aort|aortoiliac|abdominal aortic aneurysm",
              ABDOMEN_PELVIS),
    Structure("aorta", r"aort|aneurysm(?:al)? sac|endograft|stent[- ]graft|endovascular (?:aneurysm )?repair|evar\b",
              None),
    Structure("vessel", r"(?:superior |inferior )?mesenteric (?:arter|vein)|arter(?:y|ies)\b|\w*veins?\b|vena cava|"
                        r"varic|vessels?\b|vascul|splenorenal shunt|celiac (?:axis|trunk)|"
                        r"endoleak|(?:endo)?graft limb", None),
    Structure("gallbladder", r"gall ?bladder|cholecyst|gallstones?|cholelith|pericholecystic", ABDOMEN_PELVIS),
    Structure("biliary tree", r"biliar|pneumobilia|bile ducts?|common bile|common duct|hepatic ducts?|choledoch|cholangi",
              ABDOMEN_PELVIS),
    Structure("liver", r"liver|hepat(?!obiliary phase|ic flexure|orenal)", ABDOMEN_PELVIS),
    Structure("pancreas", r"pancrea|peripancrea|uncinate|ipmn|intraductal papillary", ABDOMEN_PELVIS),
    Structure("spleen", r"spleen|splen(?!ic flexure)", ABDOMEN_PELVIS),
    Structure("adrenal gland", r"adrenal", ABDOMEN_PELVIS, paired=True),
    Structure("kidney", r"kidneys?\b|renal|nephr|hydro(?:uretero)?nephros|perinephric|perirenal|gerota|collecting systems?|pyelo|calyc|cali(?:ec|ce)",
              ABDOMEN_PELVIS, paired=True),
    Structure("ureter", r"ureter|hydroureter|periureteral|ureterovesical|ureteropelvic", ABDOMEN_PELVIS, paired=True),
    Structure("urinary bladder", r"(?<!gall )(?<!gall)bladder|vesical|cystitis", ABDOMEN_PELVIS),
    Structure("urethra", r"urethr|periurethral", ABDOMEN_PELVIS),
    Structure("prostate", r"prostat|extraprostatic|peripheral zone|transition zone|central zone", ABDOMEN_PELVIS),
    Structure("seminal vesicle", r"seminal vesic", ABDOMEN_PELVIS, paired=True),
    Structure("uterus", r"uter(?:us|ine)|endometri(?:um|al)|myometri|cervix|cervical canal|fibroids?|hysterectom|"
                        r"junctional zone|nabothian|retrocervical|paracervical|parametri|"
                        r"cervical (?=carcinoma|cancer)",
              ABDOMEN_PELVIS),
    Structure("ovary", r"ovar|adnex|fallopian|tubal\b|hydrosalpinx|endometrioma|oophorectom|salping", ABDOMEN_PELVIS,
              paired=True),
    Structure("vagina", r"vagin|vulv|labia\b|labial\b|bartholin", ABDOMEN_PELVIS),
    Structure("penis", r"penis|penile|corpus cavernosum|corpora cavernosa", ABDOMEN_PELVIS),
    Structure("anal canal", r"anal canal|anus\b|perianal|anorectal|\w*sphincter|ischio-?(?:anal|rectal)|"
                            r"(?:inter|trans|supra|extra)sphincteric", ABDOMEN_PELVIS),
    Structure("stomach", r"stomach|gastric|gastro|gastrectom", ABDOMEN_PELVIS),
    Structure("bowel", r"bowel|colon|colic|sigmoid|c(?:a)?ecum|cecal|ileum|ileal|ileocolic|jejun|duoden|rect(?:um|al)|"
                       r"ileo\w+|entero\w+|(?:hepatic|splenic) flexure|append|periappendiceal|diverticul|mesenter|pericolonic|anastomo|"
                       r"\w+jejunostomy|\w*colitis|proctitis|"
                       r"epiploic|haustra|terminal ile|small intestin|intestin|(?:hemi)?colectom|intussus|rectosigmoid",
              ABDOMEN_PELVIS),
    Structure("peritoneal cavity", r"peritone|hemoperitone|haemoperitone|pneumoperitone|ascites|"
                                   r"(?:right|left) (?:upper|lower) quadrant|paracolic|cul-de-sac|pouch of douglas|morison|perihepatic|"
                                   r"perisplenic|omentum|omental|hepatorenal|lesser sac|free (?:intraperitoneal )?(?:air|gas)",
              ABDOMEN_PELVIS),
    Structure("pelvis", r"pelvis\b|pelvic (?:free )?fluid|pelvic (?:cavity|side ?wall|floor)|presacral|rectovaginal|"
                        r"uterosacral|vesicouterine|"
                        r"perineum|perineal", ABDOMEN_PELVIS),
    Structure("retroperitoneum", r"retroperitone|para-?aortic|aortocaval|paracaval|retrocaval", ABDOMEN_PELVIS),
    Structure("abdominal wall", r"abdominal wall|inguinal|umbilical|ventral hernia|incisional|hernia sac|"
                                r"(?:femoral|spigelian|obturator|parastomal|lumbar|epigastric) hernia|rectus sheath",
              ABDOMEN_PELVIS),
    Structure("muscle", r"psoas|iliopsoas|iliacus|rectus abdominis|gluteal|gluteus|paraspinal|levator ani|piriformis|"
                        r"obturator internus|muscles?\b|musculature|intramuscular", None),
    Structure("diaphragm", r"(?:hemi)?diaphragm", None),
    Structure("scrotum", r"scrot|hydrocele|varicocele|testi[sc]|testes|testicular|epididym|spermatic cord",
              ABDOMEN_PELVIS, paired=True),
    Structure("soft tissue", r"subcutaneous|soft tissues?(?! (?:mass|density|attenuation|thickening|component|nodule|"
                             r"lesion|infiltration|stranding|signal|deposit))|flank|skin\b|cutaneous", None),
    Structure("surgical bed", r"(?:post-?operative|surgical|resection) bed", None),
    Structure("bone", r"bones?\b|transverse process|osseous|marrow|vertebra|spine\b|spinal|sacr|coccy|ilium|iliac (?:bone|wing|crest|blade)|acetabul|femor|"
                      r"pubic|ischi|ribs?\b|sternum|clavic|scapul|musculoskeletal|" + VERTEBRA, None),
    # the region itself, for what the report places nowhere more precise ("free fluid in the abdomen")
    Structure("abdomen", r"abdomen\b|abdominal cavity|intra-?abdominal", ABDOMEN_PELVIS),
)

# Organs that are normally seen full or empty ("partially distended", "collapsed"), by `Structure.name`.
HOLLOW_ORGANS = frozenset({"urinary bladder", "gallbladder", "bowel", "stomach"})

_COMPILED = tuple((structure, re.compile(rf"\b(?:{structure.words})", re.IGNORECASE)) for structure in STRUCTURES)
SIDE = re.compile(r"\b(right|left|bilateral|both)\b", re.IGNORECASE)
# "Observation 1:", "Lesion 2:": a heading that goes on describing the organ of the heading before it.
# Parts of an organ ("segment 7", "lower pole", "pancreatic tail"): a finding placed in one gets "of the <organ>".
SUBPART_WORDS = (r"segments? [1-8][ab]?(?:[/-][1-8][ab]?)?|(?:caudate )?lobes?|poles?|body|tail|head|neck|"
                 r"uncinate process|fundus|dome|interpolar region|zones?|wall|base|apex|cortex|isthmus|gland")
SUBPART = re.compile(rf"\b(?:{SUBPART_WORDS})\b", re.IGNORECASE)
CONTINUING_HEADING = re.compile(r"^(?:observation|lesion|nodule|mass|finding|target lesion)s?\s*#?\s*\w{0,3}$",
                                re.IGNORECASE)


def structure_pattern(structure: Structure) -> re.Pattern:
    return next(pattern for candidate, pattern in _COMPILED if candidate == structure)


def structures_in(text: str) -> list[Structure]:
    """The structures `text` names, in the order of `STRUCTURES`."""
    return [structure for structure, pattern in _COMPILED if pattern.search(text)]


def structure_named_first(text: str) -> Structure | None:
    """The structure whose words come first in `text`: the one a finding is in ("bladder wall thickening next to
    the sigmoid colon" is in the bladder)."""
    found = [(pattern.search(text).start(), structure) for structure, pattern in _COMPILED if pattern.search(text)]
    return min(found, key=lambda item: item[0])[1] if found else None


def names_structure(text: str) -> bool:
    return bool(structures_in(text))


@dataclass(frozen=True)
class Organ:
    """The structure of an organ heading and the words that name it in a prompt: "right kidney"."""

    structure: Structure
    phrase: str
    part: str = ""  # "segment 2" under a "Segment 2:" heading


# Where a finding's head phrase ends: what follows is said about it ("..., raising the possibility of ...").
_HEAD_END = re.compile(r"[,;(]|\s(?:with|without|raising|causing|which|that|abutting|compressing|displacing|arising|"
                       r"extending|towards)\s", re.IGNORECASE)


def head_of(text: str) -> str:
    """A finding's head phrase: "Mass arising from the left wall and extending towards the ureter" -> "Mass"."""
    return _HEAD_END.split(text, maxsplit=1)[0]


def structure_of(text: str) -> str | None:
    """The structure a finding is in, as a prompt would name it: "Moderate left hydronephrosis" -> "left kidney";
    one its head phrase names first ("Splenic enlargement, raising the possibility of liver injury": the spleen)."""
    found = structures_in(head_of(text)) or structures_in(text)
    if not found:
        return None
    side = SIDE.search(text)
    if found[0].paired and side and side.group(1).lower() in ("right", "left"):
        return f"{side.group(1).lower()} {found[0].name}"
    return found[0].name


def organ_named_in(text: str) -> Organ | None:
    """The first organ a statement names, for its findings that name none."""
    found = [s for s in structures_in(text) if s.region == ABDOMEN_PELVIS]
    return Organ(found[0], found[0].name) if found else None


def sub_heading_organ(heading: str, organ: Organ | None) -> Organ | None:
    """Under an organ heading, "Left:" or "Segment 2:" narrows it: left kidney, segment 2 of the liver."""
    heading = " ".join(heading.lower().split())
    if organ is None:
        return None
    side = SIDE.fullmatch(heading)
    if side and organ.structure.paired:
        return Organ(organ.structure, f"{side.group(1)} {organ.structure.name}")
    if SUBPART.fullmatch(heading):
        return Organ(organ.structure, organ.phrase, heading)
    return organ if CONTINUING_HEADING.match(heading) else None


def heading_organ(heading: str) -> Organ | None:
    """The organ of a heading: "Liver/biliary" -> liver, "Right kidney" -> right kidney, "Transition zone" ->
    prostate transition zone; None for a heading that names no single organ ("Vessels", "Other")."""
    heading = " ".join(heading.lower().split())
    structure = structure_named_first(heading)
    if structure is None:
        return None
    if structure.name in ("vessel", "lymph node") and not re.fullmatch(r"lymph nodes?", heading):
        return None  # one vessel among many, a node station: no single structure to name
    side = SIDE.match(heading)
    if side and structure.paired:
        return Organ(structure, f"{side.group(1)} {structure.name}")
    if structure.name in ("bowel", "muscle") and re.fullmatch(r"[a-z ]+", heading):  # "Sigmoid colon:", "Left psoas:"
        return Organ(structure, heading)
    if SUBPART.search(heading) and structure.name not in heading:
        return Organ(structure, f"{structure.name} {heading}")  # "transition zone" -> "prostate transition zone"
    return Organ(structure, structure.name)


def region_of(text: str) -> str | None:
    """The body region of the first structure of known region that `text` names."""
    return next((structure.region for structure in structures_in(text) if structure.region), None)
