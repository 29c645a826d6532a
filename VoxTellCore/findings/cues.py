"""Word lists the rule-based extractor looks for, as regular expressions (case-insensitive)."""

from __future__ import annotations

import re

from VoxTellCore.findings.categories import ARTERIAL_VARIANT, CATEGORIES, DUCT_FILLING_DEFECT, FLUID, VENOUS_GAS


def _any(*patterns: str) -> re.Pattern:
    return re.compile("|".join(rf"\b(?:{p})" for p in patterns), re.IGNORECASE)


# Nouns that name a finding: the category keywords plus findings outside the lungs.
FINDING_NOUN = _any(
    *(keyword for category in CATEGORIES for keyword in category.keywords),
    "thickening", "calcification", "hernia", "plaque", r"\w*stones?\b", "calcul", "aneurysm", "cardiomegal",
    "lymphadenopath", "adenopath", r"lymph nodes?", "fracture", "collection", "goit", "stent", "catheter",
    "pacemaker", "prosthe", "atheroscl", "steatosis", "osteophyt", "deformit", "hydronephros", "ascites",
    # devices, trauma, vessels, surgery: positive findings even where no category keyword applies
    r"tubes?\b", r"lines?\b", r"drain(?!s? (?:via|into|to|through|normally|freely|well)\b)", r"wires?\b", r"clips?\b", r"sutures?\b", r"ports?\b", "device",
    "contusion", "laceration", r"ruptur(?:e|ed)\b", "hemorrhag", "haemorrhag", r"filling defects?", "embol", "thromb",
    "post-?surgical", "post-?operative", r"\w+ectomy", "sternotomy", "cardiomegal", "shift",
    # abdomen and pelvis
    FLUID, r"observations?\b", r"foc(?:us|i)\b", "polyp", "fibroid", "ipmn", "intraductal papillary", "varic",
    r"\w*liths?\b", "sludge", "trabecul", r"hydro(?:nephros|ureter|salpinx)\w*", r"nodes?\b", "diverticul",
    "stenos", r"signal (?:loss|drop)", "anomal", "hypodens", "hypoattenuat", "hyperenhanc", "stranding", r"\w*listhesis",
    "hypointensit", "hyperintensit", r"iron (?:deposition|overload)", r"h(?:a)?emoperitoneum", "pneumoperitoneum",
    "pneumobilia", "hypoenhanc", "isch(?:a)?emi", r"(?:omental )?caking\b", r"implants?\b", r"shunts?\b", "infarct",
    VENOUS_GAS,
    "abscess", "h(?:a)?ematoma", "recanali", "fistul", r"sinus tracts?\b", "extravasat",
    r"(?:fistulous|enhancing|blind-ending|draining|fluid-filled) tracts?\b",
    # a tumour's contact with a vessel, in staging: a finding of the vessel
    r"contact\b", "encase", r"abutment", r"extension\b", r"invasion\b", "ileus", "volvulus", "intussuscep",
    "conglomerate", "hydrocele", ARTERIAL_VARIANT, r"deposits?\b", r"destruct", r"phlegmon", r"erosions?\b", "endoleak", "strictur", r"thinning\b", "crohn", r"collaterals?\b",
    r"ectopic pregnan", r"spina bifida",
    r"(?:rind|mantle|cuff|sheet) of (?:[\w-]+ )*?soft tissue", r"pseudo-?(?:cyst|aneurysm|polyp)",
    r"obstruction\b", r"free (?:intraperitoneal |intra-abdominal )?air\b", r"dissection\b", r"occlusion\b", "tether",
    r"pars (?:interarticularis )?defects?\b", "spondylolys", r"beading\b", "outpouch", r"ulcer(?:s|ation)?\b",
    # medical word endings that name a condition (-osis, -itis, -megaly, -iasis, -pathy, -oma)
    r"(?!diagnos|prognos|anastomos)\w{3,}(?:osis|oses|itis|megaly|iasis|pathy|omas?)\b")
# An adverb names no finding: ", expected postoperatively" and "diffusely" are said of the finding before.
FINDING_NOUN = re.compile(rf"(?:{FINDING_NOUN.pattern})(?!\w*ly\b)", re.IGNORECASE)
# Words that make an anatomical statement abnormal without naming a finding ("aorta ... increased").
ABNORMAL_MODIFIER = _any("increas", "enlarg", "dilat", "ectasi", "ectatic", "thickened", "calcified", "widen", "narrow",
                         "distend", r"smaller\b", "edematous", "cirrhotic", "expanded",
                         "hypertroph", "atroph", "hypodens", "hyperdens", "degenerat", "abnormal")

# Negation before the finding ("No pleural effusion") and after it ("effusion is not seen").
NEGATION_BEFORE = _any(r"no\b", r"not\b", r"none\b", r"without\b", r"negative for", r"free of", r"absence of",
                       r"ruled out", r"nor\b", r"(?:interval )?resolution of", r"resolved\b", r"cleared\b",
                       r"clearing of", r"(?:interval )?removal of")
NEGATION_AFTER = _any(r"(?:is|are|considered|felt|thought to be|seems?) (?:very |highly )?unlikely\b",
                      r"(?:is|are|was|were) not (?:seen|detected|observed|identified|present|visuali[sz]ed|noted|"
                      r"distorted|involved|obstructed|narrowed|displaced|invaded)",
                      r"not (?:seen|detected|observed|identified|present)", r"absent\b", r"no longer",
                      r"(?:has|have) (?:since )?(?:completely )?(?:resolved|cleared|disappeared)", r"resolved\b",
                      # normal by a criterion, or a device taken out: not a finding to segment
                      r"not (?:enlarged|dilated|thickened|pathologic\w*)", r"non-?(?:dilated|enlarged|distended|thickened)\b",
                      r"otherwise (?:\w+ )?(?:postmenopausal|age-appropriate|normal)\b",
                      r"(?:is|are) (?:well |clearly )?separated? from\b", r"(?:within|upper|at the upper) "
                      r"(?:normal |physiologic )?limits?(?: of normal)?", r"by (?:size )?criteria", r"physiologic(?:al)?\b",
                      r"(?:unremarkable|normal|appropriate|expected) for (?:the patient'?s )?age",
                      # "The ileocolic anastomosis is unremarkable": the whole predicate is an all-clear
                      r"\b(?:is|are) unremarkable\W*$",
                      r"(?:has|have) (?:since )?been (?:removed|explanted|withdrawn)", r"removed\b",
                      # "the laceration does not reach the hepatic veins": a statement about the veins
                      r"(?:does|do|did) not (?:reach|involve|extend|abut|contact|invade|cross)\b")
# Follow-up words that say a finding is still there: "no change in X" and "without interval growth" are not
# negations of X. They are masked before negation is looked for.
STABILITY = _any(r"(?:no|without) (?:significant |appreciable |substantial |interval |definite )*"
                 r"(?:change|progression|growth|enlargement|increase|decrease)")
# Hedges: the finding is reported as uncertain. Masked before negation is looked for ("cannot be ruled out").
# "invasion cannot be excluded" after a finding: a diagnosis the finding may be, not a second finding.
# "cannot be entirely excluded": an adverb between the verbs changes nothing.
_EXCLUSION = (r"(?:cannot|can not|can't) (?:be )?(?:(?:entirely|completely|fully|definitely|reliably) )?(?:exclude|ruled? out)d?",
              r"(?:is|are) not excluded",
              r"not (?:be )?excluded")
EXCLUSION = _any(*_EXCLUSION)
HEDGE = _any(r"possibl[ey]", r"probabl[ey]", r"likely", r"questionabl[ey]", r"suspected", r"suspicious\b",
             r"concerning for", r"worrisome for", r"suggestive of", r"suggesting\b",
             r"presumed", r"presumably", r"equivocal", *_EXCLUSION, r"may (?:represent|be|reflect)\b", r"could (?:represent|be|reflect)\b",
             r"can be seen (?:with|in)\b", r"favou?r(?:ed|s|ing)?\b",
             r"versus\b", r"vs\.?")
# A hedge at the start or end of a finding is dropped from its text (the flag keeps it).
LEADING_HEDGE = re.compile(
    r"^(?:(?:possible|possibly|probable|probably|likely|questionable|questionably|suspected|presumed|equivocal|"
    r"(?:it )?(?:cannot|can not|can't) (?:be )?(?:exclude|excluded|rule out|ruled out))\s+)+(?:(?:a|an)\s+)?",
    re.IGNORECASE)
TRAILING_HEDGE = re.compile(
    r"(?:,?\s+(?:is|are) (?:likely|possible|probable|suspected|not excluded)|,?\s+(?:cannot|can not) be "
    r"(?:excluded|ruled out)|\s*\?+)$", re.IGNORECASE)
# How full a hollow organ is ("partially distended bladder", "collapsed bowel"): normal, not a finding.
NORMAL_FILLING = _any(r"(?:partially|partly|incompletely|minimally|under|non|well|adequately|normally)[- ]?distended",
                      r"decompressed\b", r"collapsed\b", r"contracted\b")
# "Moderately distended urinary bladder, otherwise unremarkable": a filling described with an all-clear.
FILLING_OTHERWISE_NORMAL = re.compile(r"\bdistended\b[^;]*,\s*(?:but\s+)?otherwise (?:unremarkable|normal)\b",
                                      re.IGNORECASE)
# Normal statements ("heart size is normal", "lungs are clear").
NORMAL = _any(r"normal\b", r"normally\b", "unremarkable", r"within normal limits", r"clear\b", r"patent\b",
              r"(?:is|are) open\b", r"intact\b", r"preserved\b", r"natural\b")

# "The duct below the tumour is of normal calibre": a structure said to be normal, whatever its subject names.
NORMAL_PREDICATE = re.compile(r"\b(?:(?:is|are|remains?|appears?) (?:otherwise )?(?:of )?(?:normal|unremarkable)"
                              r"(?: (?:in )?(?:size|calibre|caliber|thickness|appearance|position))?|"
                              r"(?:drains?|enhances?|excretes?|functions?|opacifies|empties) normally)"
                              r"\s*(?:\([^()]*\))?\s*$", re.IGNORECASE)

# "lateral to the ovarian mass": a finding used as a landmark to place something else.
LANDMARK = re.compile(r"\b(?:(?:lateral|medial|anterior|posterior|superior|inferior|adjacent|next|close|cranial|caudal)"
                      r"\s+to|(?:well )?separate(?:d)? from)\s+(?:the|a|an)\s+[\w-]+(?:\s+[\w-]+)?(?=\s*(?:[,;.]|$|\sand\b))",
                      re.IGNORECASE)

# Comparison with an earlier study ("stable since the prior exam", "new", "now measures"). Such a finding is still
# reported; only a prior-study statement about something no longer there is left out.
PRIOR_REFERENCE = _any(
    r"stable\b", r"unchanged\b", r"new\b", r"now (?:measur|also)", r"previously", r"progress", r"resolution",
    r"(?:increas|decreas|improv|worsen)(?:ed|ing)\b", r"enlarging\b", r"interval\b", r"no (?:significant |interval )*change",
    r"compared (?:to|with)", r"in comparison (?:to|with)", r"since (?:the )?(?:prior|previous|last)",
    r"(?:prior|previous|earlier|last) (?:exam|examination|study|studies|ct|scan|imaging)", r"no longer",
    r"(?:has|have) resolved", r"resolved\b", r"cleared\b", r"removed\b", r"removal\b")
# "since the prior exam", "compared to prior", "from prior": said by "stable"/"new" already, dropped from the text.
PRIOR_COMPARISON = re.compile(
    r",?\s*\b(?:since|from|compared (?:to|with)|relative to|(?:when |in )?compared (?:to|with)|in comparison (?:to|with))"
    r"\s+(?:the\s+)?(?:prior|previous|last|earlier)(?:\s+(?:exam|examination|study|ct|scan|imaging|one))?\b,?",
    re.IGNORECASE)
# A prior measurement in a follow-up ("now 15 mm, previously 12 mm"): dropped from the finding's text.
PRIOR_MEASUREMENT = re.compile(
    r",?\s*\(?\b(?:previously|formerly|prior|baseline|was|from|vs\.?|versus|(?:than|as) (?:before|prior|previously))\s+\(?"
    r"(?:measur\w*\s+)?\d+(?:\.\d+)?(?:\s*(?:x|-)\s*\d+(?:\.\d+)?)*\s*(?:mm|cm)\)?", re.IGNORECASE)

# Sentences that are not observations: recommendations, management, communication, technique, cross-references.
NOT_AN_OBSERVATION = _any(
    "recommend", r"(?:is|are) suggested", r"we suggest", r"suggest (?:clinical|follow|further|correlation)",
    r"advis", r"(?<!without )(?<!without a )(?<!no )correlat", r"follow[- ]?up",
    # advice on management: "drainage is usually sufficient for ...", "growth ... would warrant surgical referral"
    r"(?:would|will|should|may) (?:warrant|require|prompt|merit|necessitate)\b", r"\bwarrants\b",
    r"^\s*(?:r/o|rule out|to rule out)\b",  # a question the study was asked
    r"(?:is|are) (?:usually|generally|typically|often) (?:sufficient|adequate|indicated|required|curative)\b", r"(?:could|can)(?:not| not) be evaluated",
    r"amenable to", r"suitable for", r"(?:good|poor|not a) candidate for", r"(?:could|should|may) be considered", r"^\s*consider\b", r"consult(?:ed|ation)\b", r"discussed (?:with|by|at)",
    r"tumou?r board", r"multidisciplinary (?:team|meeting|conference)",
    # a response assessment over all target lesions, not a finding: "partial response", "sum of diameters"
    r"\btarget lesions\b", r"\bsum of (?:the )?(?:longest )?diameters\b", r"\b(?:partial|complete) (?:metabolic )?response\b",
    r"communicated", r"notified", r"\b(?:informed|paged|contacted)\b", r"(?:the )?patient (?:is|was|will be) (?:being )?(?:taken|transferred|referred|sent|"
    r"admitted|scheduled)",
    r"evaluated optimally", r"contrast (?:medium|material|agent)",
    r"sections? (?:were|was) (?:taken|obtained)", r"reconstruct", r"(?:slice|section) thickness")

# A statement that only points back ("Lines and tubes as above") adds no finding.
CROSS_REFERENCE = _any(r"as (?:described |noted |seen |detailed )?(?:above|below)", r"see (?:above|below)",
                       r"(?:described|detailed|discussed) (?:above|below)")
# Finding nouns named by their kind ("nasogastric tube", "chest tube"): the word before belongs to the head.
DEVICE_NOUN = re.compile(r"^(?:tube|line|catheter|drain|wire|clip|suture|port|stent)s?$", re.IGNORECASE)
# Where the noun phrase of a finding ends and its location or measurement begins.
PREPOSITION = re.compile(r"(?<!-)\s(?:in|of|at|along|within|involving|measuring|on|from|to|near|throughout|with|"
                         r"without|and|but)\s|,|;", re.IGNORECASE)

# Interpretation that follows an observation ("... consistent with pneumonia", "..., expected after surgery"); cut
# off, the observation stays.
INTERPRETATION_TAIL = re.compile(
    r",?\s*\b(?:(?:with )?(?:(?:imaging|CT|MR|MRI) )?(?:features|appearances?|findings) )?"
    r"(?:(?:which|that) )?(?:(?:both|all|each)(?: of (?:them|which))? )?(?:is |are |may be |could be )?"
    r"(?:most |more |highly )?(?:consistent with|"
    r"suggestive of|compatible with|suspicious for|concerning for|worrisome for|suggesting|representing|"
    r"(?:likely|probably|may|could|which may) represent\w*|in favou?r of|corresponding to|diagnostic of|in keeping with|"
    r"(?:(?:is|are|most) )?favou?red to (?:represent|be)|favou?ring|raising the possibility of|"
    r"(?:are|is) (?:those|that) of|(?:are |is )?(?:typical|characteristic) of|"
    r"too small to characteri[sz]e|differential (?:diagnosis |diagnoses |considerations? )?(?:includes?|is|are)|"
    r"(?:can|may|could) be seen (?:with|in))\b.*$|"
    r"(?:,\s*|\s(?:is|are) )(?:(?:which|that) (?:is |are )?)?(?:as |an? )?(?:expected|anticipated)\b.*$|"
    # "..., although metastasis cannot be entirely excluded": a diagnosis conceded, no finding of its own
    r",?\s*\b(?:although|though|even though|while)\b[^;]*?\b(?:exclude|excluded|ruled? out|characteri[sz]ed)\b.*$",
    re.IGNORECASE)
# "X and Y, both suspicious for ...": an interpretation of every finding of its statement.
SHARED_TAIL = re.compile(r",?\s*(?:both|all|each)\b", re.IGNORECASE)
# "..., likely atelectasis", "nodes, likely reactive, measuring 9 mm": an interpretation between commas (cut up to
# the next comma; the finding is flagged uncertain). "Likely atelectasis" alone stays a finding.
HEDGED_ASIDE = re.compile(r",\s*(?:(?:most |very |also )?(?:likely|probably|possibly|presumably|perhaps)\b|\?\s*(?=\w))[^,;]*",
                          re.IGNORECASE)

# Anatomy words: a negated or normal statement must name some anatomy to stand on its own.
ANATOMY = _any(r"lungs?\b", "pulmonar", r"lobes?\b", "lingula", "pleura", "bronch", "trache", "parenchym",
               "hemithora", "airway", "heart", "cardi", "pericard", "coronar", "aort", "liver", "kidney", "adrenal",
               "spleen", "pancrea", "esophag", "thyroid", "mediastin", "bone", "vertebr", "diaphragm", "stomach",
               "gallbladder", "vascular", "vessel")

# The fronted location of "In the left lower lobe, there is a nodule."
FRONTED_LOCATION = re.compile(
    r"^(?:(?:is|are) (?:seen|present|noted|visible)\s+)?(?P<location>(?:in|within|at|on) [^,]+?),?\s+"
    r"(?:there (?:is|are|was|were)|(?:is|are) (?:seen|present|noted|visible))\s+(?P<rest>.+)$", re.IGNORECASE)
# "Is seen in the segment 7 a lesion ...": the location between the verb and the finding.
INVERTED_LOCATION = re.compile(r"^(?:is|are) (?:seen|present|noted|visible)\s+(?P<location>(?:in|within|at|on) "
                               r"(?:the )?(?:[\w/-]+ ){0,4}?(?:[\w/-]+))\s+(?P<rest>(?:an?|multiple|several|two|"
                               r"three)\s.+)$", re.IGNORECASE)
# A trailing location phrase that a location-less sibling finding can borrow.
LOCATION_PHRASE = re.compile(r"\b(?:in|within|at|involving|along|of) (?:the )?(?:[\w-]+ ){0,5}?"
                             r"(?:lungs?|lobes?|segments?|lingula|bases|apices|hemithorax|hemithoraces|"
                             r"fields?|zones?|regions?|sides?|bones?)\b.*$", re.IGNORECASE)
SIDE = re.compile(r"\b(?:right|left|bilateral|both|upper|lower|middle|basal|apical|bibasilar|lingula\w*)\b",
                  re.IGNORECASE)
# Words that place a finding (a clause with one does not borrow its neighbour's location).
PLACE = _any(r"lungs?\b", r"lobes?\b", "lingula", "hemithora", r"bases?\b", "apex", "apices", "hil(?:um|ar)", "mediastin",
             "subcarinal", "paratracheal", "liver", "hepat", "kidney", "renal", "adrenal", "thyroid", "spine", "vertebr",
             r"ribs?\b", "aort", "coronar", "heart", "pericard", "stomach", "splen", "chest wall", "carina", "vena cava",
             "fissur")
# "left lower lobe opacity": a location in front of the finding, taken by a hedged diagnosis after it.
LOBE_NAME = re.compile(r"\b(?:(?:right|left) (?:upper|middle|lower) lobe|lingula)\b", re.IGNORECASE)
# Words that say where a finding is, for telling a restatement from a second finding (same words, same place).
LOCATION_WORDS = {"right": "right", "left": "left", "both": "both", "bilateral": "both", "upper": "upper",
                  "middle": "middle", "lower": "lower", "lingula": "lingula", "lingular": "lingula", "apex": "apex",
                  "apical": "apex", "apices": "apex", "base": "base", "bases": "base", "basal": "base",
                  "basilar": "base", "bibasilar": "base", "hilar": "hilar", "hilum": "hilar", "mediastinal": "mediastinal",
                  "subcarinal": "subcarinal", "paratracheal": "paratracheal", "liver": "liver", "hepatic": "liver",
                  "kidney": "kidney", "kidneys": "kidney", "renal": "kidney", "adrenal": "adrenal",
                  "thyroid": "thyroid", "spine": "spine", "rib": "rib", "ribs": "rib", "aorta": "aorta",
                  "aortic": "aorta", "coronary": "coronary", "segment": "segment", "segmental": "segment",
                  "artery": "artery", "arteries": "artery", "vein": "vein", "veins": "vein"}

# Where one sentence splits into several findings; the separator is kept to rejoin fragments.
CLAUSE_SEPARATOR = re.compile(r"(,?\s+(?:and|but|while|whereas|however,?)\s+|,?\s+except (?:for )?|,?\s+with\s+|"
                              r"\s+to the level of\s+|,\s+)",
                              re.IGNORECASE)
# A clause that starts like this introduces a new (positive) finding, so a preceding "no" does not carry over.
NEW_POSITIVE_CLAUSE = re.compile(
    r"^(?:there\b|an?\b|\d|mild|moderate|severe|small|large|minimal|marked|significant|extensive|multiple|"
    r"several|few|scattered|some|new|stable|unchanged|persistent|residual|trace|possible|probable|questionable|"
    r"suspected)", re.IGNORECASE)
NO_CARRY_SEPARATOR = re.compile(r"\bbut\b|\bwhile\b|\bwhereas\b|\bhowever\b|\bexcept\b|\bwith\b", re.IGNORECASE)
# The last word of a piece that cannot end a noun phrase ("severe centrilobular | and paraseptal emphysema").
ADJECTIVE_END = re.compile(r"(?:\b(?:mild|moderate|severe|minimal|marked|small|large|extensive|scattered|patchy|"
                           r"upper|middle|lower|right|left|bilateral|ground[- ]glass|tree[- ]in[- ]bud)|"
                           r"\w{4,}(?:al|ar|ic|ous|ive|ary))$", re.IGNORECASE)
# "Wall thickening and mucosal hyperenhancement": how a thickened wall enhances, not a finding of its own.
# "Lesion ..., homogeneous arterial phase hyperenhancement without washout": how a lesion looks on imaging.
IMAGING_FEATURE = re.compile(r"^(?:[\w-]+\s+){0,4}?(?:(?:hyper|hypo)?enhanc(?:ement|ing)|(?:iso|hyper|hypo)-?intens\w*|"
                             r"signal\b|restricted diffusion|diffusion restriction|washout|density|attenuation|"
                             r"(?:air|gas)-(?:fluid|fluid) levels?|air-fluid|fluid levels?)\b",
                             re.IGNORECASE)
IMAGING_WORD = re.compile(r"enhanc|intens|signal|diffusion|washout|densit|attenuat", re.IGNORECASE)
ENHANCEMENT_DETAIL = re.compile(r"^(?:(?:mucosal|mural|avid|increased|decreased|mild|marked)\s+)*(?:hyper|hypo)?"
                                r"enhanc(?:ement|ing)\b",
                                re.IGNORECASE)
# "Mass with coarse calcification and areas of necrosis": what a lesion is made of describes the lesion.
LESION = re.compile(r"\b(?:mass(?:es)?|lesions?|nodules?|tumou?rs?|polyps?|cysts?|foc(?:us|i)|observations?|deposits?)\b",
                    re.IGNORECASE)
LESION_FEATURE = re.compile(r"^(?:[\w.-]+\s+){0,3}?(?:calcifications?|necrosis|strands?|septations?|components?|"
                            r"h(?:a)?emorrhage|cavitation|spiculations?|margins?|(?:fat-|fluid-)?fluid levels?|"
                            r"rokitansky (?:nodule|protuberance)|dermoid plug|"
                            r"areas? of (?:necrosis|h(?:a)?emorrhage|"
                            r"calcification|fat))\b", re.IGNORECASE)
# "Appearances are those of spondylodiscitis", "The findings are typical of ...": what the findings before are.
INTERPRETING_SUBJECT = re.compile(r"^\s*(?:the )?(?:overall )?(?:appearances?|findings?|features?|imaging features|"
                                  r"this|these)\b", re.IGNORECASE)
# A statement said of the finding before: "This may represent ...", "they are indeterminate", "; may represent ...".
PRONOUN_START = re.compile(r"^\s*(?:this|these|they|it|may|might|could)\b", re.IGNORECASE)
# "It has a thick enhancing wall ...", "These loops are also dilated": a sentence about the finding before.
ANAPHORIC_START = re.compile(r"^\s*(?:it|its|they|their|these|this|the latter)\b(?! (?:is|are) (?:also )?(?:seen|noted) in)",
                             re.IGNORECASE)
STRANDING = re.compile(r"\bstranding\b", re.IGNORECASE)
# "... and stranding of the surrounding fat": the fat around the finding before, no place of its own.
SURROUNDING_FAT = re.compile(r"\b(?:surrounding|adjacent|neighbou?ring) fat\b", re.IGNORECASE)
# "T2 and T2* signal loss": MR sequences listed in one noun phrase.
SEQUENCE_END = re.compile(r"\bT[12]\*?$")
SEQUENCE_START = re.compile(r"^T[12]\*?(?:[\s-]|$)")
# A piece that starts with a preposition only adds detail to the previous one.
PREPOSITION_START = re.compile(r"^(?:in|within|at|along|of|on|from|to|near|adjacent to|involving|predominantly|"
                               r"mostly|most pronounced|worst|especially|the largest|largest|"
                               r"which|that|(?:surrounded|accompanied|bordered|outlined|lined|characteri[sz]ed|"
                               r"delineated) (?:by|with)|(?:arising|originating) from|"
                               r"now (?:longer|larger|smaller|bigger|shorter|more|less|measur\w*))\b",
                               re.IGNORECASE)  # said of the noun before
# "Right anterior transition zone at the apex, 1.6 cm lesion": a place without a finding, then the finding.
BARE_FRONTED_LOCATION = re.compile(r"^(?P<location>(?![^,]*\b(?:is|are|was|were|has|have)\b)[^,]{3,60}),\s*(?P<rest>.+)$",
                                   re.IGNORECASE)

# Kinds of finding that a report names with different words: an impression's diagnosis ("Prostatomegaly",
# "Right adrenal adenoma", "Acute appendicitis") restates the finding described with others ("Enlarged prostate",
# "Right adrenal nodule", "The appendix is dilated") when both are in the same abdominal or pelvic structure.
FINDING_KINDS = {
    "lesion": _any(r"lesions?\b", r"mass(?:es)?\b", r"nodules?\b", r"cysts?\b", r"cystic\b", r"observations?\b", r"deposits?\b",
                   r"foc(?:us|i)\b", r"hypodens", r"hypoattenuat", r"metasta", r"tumou?rs?\b", r"neoplas",
                   r"\w+omas?\b", r"ipmns?\b", r"intraductal papillary", r"carcinoma", r"cancers?\b", r"hcc\b", r"fibroids?\b",
                   r"polyps?\b", r"focal nodular hyperplasia"),
    "stone": _any(r"stones?\b", r"calcul", r"\w*lithiasis", r"gallstones?\b", DUCT_FILLING_DEFECT),
    "enlargement": _any(r"enlarg", r"\w+megaly", r"hypertroph", r"distended"),
    "atrophy": _any(r"atroph", r"smaller\b", r"cortical thinning", r"shrunken", r"(?:is|are) small\b"),
    "bleeding": _any(r"extravasat", r"h(?:a)?emorrhag", r"bleed", r"(?:contrast )?blush\b"),
    "dilatation": _any(r"dilat", r"ectasi", r"hydro\w*(?:nephrosis|ureter)", r"obstruction\b"),  # dilated above it
    "aneurysm": _any(r"aneurysm"),
    "stenosis": _any(r"stenos", r"narrowing"),
    "thrombus": _any(r"thromb"),
    "varices": _any(r"varic", r"collaterals?\b", r"collateral (?:veins?|vessels?|pathways?)"),
    "ascites": _any(r"ascites", r"free fluid"),
    "collection": _any(r"collections?\b", r"abscess", r"pseudo-?cysts?\b"),
    "spondylolysis": _any(r"spondyloly", r"pars (?:interarticularis )?defects?", r"\w*listhesis"),
    "fracture": _any(r"fractur", r"compression deformit"),
    "steatosis": _any(r"steatosis", r"fatty (?:infiltration|liver|change)", r"signal (?:loss|drop)"),
    "cirrhosis": _any(r"cirrho", r"nodular (?:contour|surface|margins?)", r"surface nodularity"),  # its sign
    "appendicitis": _any(r"appendicitis", r"append\w* (?:is )?(?:\w+ ){0,2}dilat"),
    "adenopathy": _any(r"lymph nodes?\b", r"\w*adenopath", r"nodes?\b"),
    "inflammation": _any(r"pancreatitis", r"o?edema", r"edematous"),
    "wall thickening": _any(r"(?:wall|mural) thicken", r"skip (?:lesion|segment)s?\b",  # a skip lesion is one
                            r"thick(?:ened)? (?:\w+ )?wall", r"o?edematous wall", r"wall o?edema",
                            r"^(?:the )?walls? of\b",  # "The wall of the pouch ... is thickened"
                            r"cholecystitis", r"\w*colitis"),  # the diagnosis of a thickened gallbladder, colon wall
}
