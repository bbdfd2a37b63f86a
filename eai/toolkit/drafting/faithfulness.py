"""The faithfulness check: does a drafted explanation contradict the clip's own descriptors?

A draft's evidence is {descriptor: {"value", "unit", "level"}} with level low / typical / high
relative to the reference population (eai.toolkit.descriptors). The text is scanned with a
claim lexicon (`LEXICON`: English phrase pattern -> descriptors, direction); each match is a
claim, compared with the level of the first of its descriptors that has one:

  supported     the claim's direction equals the measured level
  weak          the measured level is typical: an overstatement, not a contradiction
  contradicted  claims high and measured low, or the reverse
  unverifiable  none of its descriptors has a level in the evidence

A negated claim ("not fast", "without raising the arms", "neither slow nor fast") keeps its
phrase, flips its direction and is marked negated: it only says "not the other extreme", so it
is contradicted only by that extreme (measured high for "not fast") and supported otherwise.
"A low degree of bouncing" claims the low level of what follows it. Claims inside
counterfactual comparisons ("an angry walker would be fast", "unlike a fast gait", "slower than
a brisk walk") are dropped. docs/faithfulness.md lists the families.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eai.toolkit.descriptors import DESCRIPTOR_NAMES, DESCRIPTORS_BY_NAME

__all__ = ["CHECKED_STATUSES", "LEXICON", "Claim", "FaithfulnessResult", "check_faithfulness",
           "compile_lexicon", "summarise"]

CHECKED_STATUSES = ("supported", "weak", "contradicted")  # a level to compare with was measured

# Building blocks. In patterns a plain space means "any whitespace"; every pattern is matched
# case-insensitively between word boundaries.
BE = (r"(?:(?:is|are|was|were|remains?|remained|stays?|stayed|seems?|appears?|being|kept|held|"
      r"keeps|holds) )*")
ADV = (r"(?:(?:very|quite|rather|fairly|slightly|somewhat|noticeably|visibly|markedly|clearly|"
       r"notably|strongly|deeply|heavily|loosely|limply|mostly|largely|fully|completely|"
       r"constantly|always|often|still|also|even|more|much|so|too|a bit|a little|particularly|"
       r"especially|unusually|really|relatively|extremely|consistently|increasingly) )*")
DET = r"(?:(?:his|her|their|its|the|both|one's|left|right|a|an|one) ){0,3}"
SELF = r"(?:him|her|them|one)sel(?:f|ves)"
SIDES = rf"(?:at|by) {DET}sides?"
LIMB = r"(?:arms?|hands?|fists?)"
GAIT = (r"(?:walks?|walking|walked|strolls|strolling|march(?:es|ed|ing)?|runs?|running|ran|"
        r"jogs?|jogging|advances?|advancing|approach(?:es|ing)|travels?|travell?ing|"
        r"proceeds?|proceeding|moves forward|moving forward|cross(?:es|ing)|gait|pace|steps|"
        r"stepping)")
ARM_VERB = (r"(?:rais|lift|lower|mov|extend|wav|swing|bring|reach|stretch|gestur|open|spread|"
            r"drop|throw|thrust|point|punch|fling|pull|push)\w*")
# an adverb that qualifies the arms: "slowly raises the arms", "moves the hands slowly"
_ARMS_NEXT = rf"(?= {ARM_VERB} {DET}{LIMB}\b)"
_ARMS_BEFORE = r"(?:(?<=arms\s)|(?<=hands\s)|(?<=arm\s)|(?<=hand\s))"
SLOW = r"(?:slow(?:ly|er)?|more slowly|sluggish(?:ly)?|leisurely|unhurried(?:ly)?)"
FAST = (r"(?:fast(?:er)?|quick(?:ly|er)?|more quickly|brisk(?:ly)?|rapid(?:ly)?|swift(?:ly)?|"
        r"hurried(?:ly)?|hast(?:y|ily)|speedily)")
MOVES = r"(?:movements?|motions?|gestures?|actions?)"
UP = rf"(?: {ADV}(?:up(?:wards?)?|high|overhead|in(?:to)? the air|above {DET}heads?|skywards?))"

# The claim lexicon: (descriptors, direction, patterns). A match of any pattern is a claim that
# the descriptors are at `direction` ("low" or "high"). Descriptors are listed most specific
# first: the first one with a level in the evidence is compared. "-name" means the inverted
# sense: the claim's direction is flipped for that descriptor (energetic -> stillness low).
# When matches overlap, the longest wins, then the earlier row. Add a row (or a pattern to a
# row) to extend it; rows are validated on import (docs/faithfulness.md, "Extending").
LEXICON: list[tuple[str, str, list[str]]] = [
    # -- speed: travel, arms, overall ---------------------------------------------------------
    ("root_speed_mean quantity_of_motion", "low", [
        rf"{GAIT} {BE}{ADV}{SLOW}",
        (r"(?:slow|slower|sluggish|leisurely|unhurried|dragging|slow-paced|measured) "
         r"(?:walk|walking|gait|pace|progression|locomotion|approach|stroll)"),
        r"ambl(?:e|es|ed|ing)|saunter\w*|dawdl\w*|strolls|strolling",
        r"(?:low|reduced)[-\s](?:walking |travel )?speed",
        rf"(?:walking |travel )?speed {BE}{ADV}(?:low|slow|reduced)"]),
    ("root_speed_mean quantity_of_motion", "high", [
        rf"{GAIT} {BE}{ADV}{FAST}",
        (r"(?:fast|faster|quick|quicker|brisk|rapid|swift|hurried|hasty|speedy|fast-paced) "
         r"(?:walk|walking|gait|pace|progression|locomotion|approach|march)"),
        r"hurr(?:y|ies|ied|ying)|in a hurry|rush(?:es|ed|ing)?|dash(?:es|ed|ing)|dart(?:s|ing)",
        r"racing|(?:high|increased)[-\s](?:walking |travel )?speed",
        rf"(?:walking |travel )?speed {BE}{ADV}(?:high|fast|increased|elevated)"]),
    ("wrist_speed_mean arm_activity", "low", [
        rf"{SLOW}{_ARMS_NEXT}|{_ARMS_BEFORE}{SLOW}",
        rf"{SLOW} (?:arm|hand|wrist) {MOVES}|slow (?:gestures|gesturing)",
        rf"{LIMB} {BE}{ADV}(?:mov|wav|swing)\w* {ADV}{SLOW}"]),
    ("wrist_speed_mean arm_activity", "high", [
        rf"{FAST}{_ARMS_NEXT}|{_ARMS_BEFORE}{FAST}",
        rf"{FAST} (?:arm|hand|wrist) {MOVES}|(?:fast|quick|rapid|swift) (?:gestures|gesturing)",
        rf"{LIMB} {BE}{ADV}(?:mov|wav|swing)\w* {ADV}{FAST}",
        r"flail(?:s|ed|ing)?"]),
    ("quantity_of_motion root_speed_mean", "low", [
        r"slow(?:ly|er|est|ness|-moving|-paced)?|slow(?:s|ed|ing)(?: down)?",
        r"sluggish(?:ly|ness)?|unhurried(?:ly)?|leisurely|dragging"]),
    ("quantity_of_motion root_speed_mean", "high", [
        rf"fast(?:er|est)?|fast-moving|fast-paced|quick(?:ly|er|est|ness)|quick {MOVES}",
        r"brisk(?:ly)?|rapid(?:ly|ity)?|swift(?:ly)?|speedy|speedily|hast(?:y|ily)|hurried(?:ly)?",
        r"speeds? up|sped up|speeding up"]),
    # -- energy and activity --------------------------------------------------------------------
    ("quantity_of_motion arm_activity -stillness_fraction", "high", [
        r"energetic(?:ally)?|vigorous(?:ly)?|lively|animated(?:ly)?|dynamic(?:ally)?",
        r"agitated(?:ly)?|restless(?:ly|ness)?|exuberant(?:ly)?|frantic(?:ally)?|hyperactive",
        r"high[-\s]energy|full of energy|bursts? of energy|spirited|gesticulat\w+",
        r"(?:a lot of|lots of|much|plenty of|intense|constant) (?:movement|motion|activity)",
        r"moves (?:a lot|constantly)",
        (r"(?:high|increased|heightened|great|considerable|substantial) "
         r"(?:overall |body )?(?:movements?|motions?|activity)")]),
    ("quantity_of_motion arm_activity -stillness_fraction", "low", [
        r"lethargic(?:ally)?|listless(?:ly|ness)?|subdued|muted|lifeless|inert|inactive",
        r"low[-\s]energy|lacks? energy|lacking energy|passive(?:ly)?",
        (r"(?:little|minimal|limited|reduced|low|less|scant|sparse|restrained|small|subtle|"
         r"slight|few) (?:overall |body )?(?:movements?|motions?|activity)"),
        r"(?:barely|hardly|scarcely|rarely) moves?|moves (?:very )?little",
        rf"(?:movement|motion|activity) {BE}{ADV}(?:minimal|limited|reduced|low|sparse|subdued)"]),
    # -- stillness, pauses, hesitation, rhythm --------------------------------------------------
    ("stillness_fraction -quantity_of_motion", "high", [
        (r"(?:stands?|standing|stood|remains?|remaining|stays?|staying|keeps|keeping|holds|"
         r"holding|sits|sitting) still"),
        r"motionless(?:ly|ness)?|immobile|immobility|stillness|stock-still|standstill",
        r"frozen|freez(?:es|ing)|(?:static|fixed) (?:posture|stance|pose|position)",
        r"pause[sd]?|pausing|comes? to a (?:stop|halt)"]),
    ("stillness_fraction -quantity_of_motion", "low", [
        r"(?:rarely|seldom) (?:still|motionless|at rest|pauses)",
        r"keeps moving|(?:constantly|always|continuously) (?:in motion|moving)"]),
    ("root_speed_std stillness_fraction", "high", [
        r"hesita(?:te|tes|ted|ting|tion|tions|nt|ntly|ncy)|halting(?:ly)?|tentative(?:ly)?",
        r"stop-and-(?:go|start)|stops and starts|starts and stops|falter(?:s|ed|ing)?",
        r"(?:irregular|uneven) (?:pace|speed|progression)"]),
    ("root_speed_std", "low", [
        r"steady (?:pace|gait|walk|speed|progression|tempo)|steadily",
        r"(?:constant|even|regular|uniform|consistent) (?:pace|speed|progression)"]),
    ("gait_periodicity", "high", [
        r"rhythmic(?:al|ally)?|regular (?:rhythm|steps|stride|gait|stepping|cadence)"]),
    ("gait_periodicity", "low", [
        r"(?:irregular|uneven|broken|erratic|unsteady) (?:rhythm|steps|stride|gait|stepping)",
        r"arrhythmic|stumbl\w+|stagger(?:s|ed|ing)?|lurch\w*"]),
    # -- head -----------------------------------------------------------------------------------
    ("head_pitch_mean head_pitch_rel_trunk", "high", [
        (rf"head {BE}{ADV}(?:hanging |hangs )?(?:down(?:wards?)?|low(?:ered)?|bowed|bent|"
         rf"drooping|droops|dropped|hung|hangs|hanging|sunken|tucked)"
         rf"(?: (?:down(?:wards?)?|forwards?|low))?"),
        (rf"head {BE}{ADV}(?:tilted|tipped|pitched|inclined|angled|leaning) "
         rf"(?:down(?:wards?)?|forwards?)"),
        rf"(?:tilts|tilting|tips|tipping|bends|bending) {DET}head (?:down(?:wards?)?|forwards?)",
        r"(?:lowered|bowed|drooping|downcast|hanging|dropped|bent|down-?turned|sunken) head",
        (rf"(?:lowers|lowering|bows|bowing|bowed|drops|dropping|hangs|hanging|hung|ducks|ducking|"
         rf"tucks|tucking) {DET}head"),
        (rf"(?:looks?|looking|gazes?|gazing|stares?|staring|glances?|glancing|peers?|peering) "
         rf"{ADV}(?:down(?:wards?)?|at {DET}(?:floor|ground|feet))"),
        (rf"(?:gaze|eyes) {BE}{ADV}(?:directed |cast |fixed )?"
         rf"(?:down(?:wards?)?|on the (?:floor|ground))"),
        rf"downcast(?: eyes| gaze)?|chin {BE}(?:down|lowered|tucked|(?:on|to) {DET}chest)"]),
    ("head_pitch_mean head_pitch_rel_trunk", "low", [
        (rf"head {BE}{ADV}(?:up(?:right)?|upwards?|high|raised|lifted|erect|"
         rf"(?:held|tilted|thrown|pulled|tipped) back)"),
        r"(?:raised|lifted|upright|erect|upturned) head",
        rf"(?:raises|raising|raised|lifts|lifting|lifted) {DET}head",
        (rf"(?:holds|holding|held|keeps|keeping|throws|throwing|tilts|tilting) {DET}head "
         rf"(?:up(?:right)?|high|back|upwards?)"),
        (rf"(?:looks?|looking|gazes?|gazing|glances?|glancing|stares?|staring|peers?|peering) "
         rf"{ADV}up(?:wards?)?"),
        rf"chin {BE}(?:up|raised|lifted|high)|(?:raised|lifted) chin"]),
    ("head_tilt", "high", [
        rf"head {BE}{ADV}(?:tilted|tilting|tilts|cocked|leaning) (?:to (?:one|the) side|sideways)",
        rf"(?:tilts|tilting|cocks|cocking) {DET}head(?: to (?:one|the) side| sideways)?",
        r"(?:sideways|lateral) head tilt"]),
    ("head_forward", "high", [
        rf"head {BE}{ADV}(?:thrust|jutting|jutted|pushed|poking|protruding|craned) forwards?",
        rf"(?:jutting|protruding|forward) head|cran(?:es|ing) {DET}(?:head|neck)"]),
    ("head_pitch_std", "high", [r"nod(?:s|ded|ding)|nodding head"]),
    ("head_bounce pelvis_bounce", "high", [rf"bobbing head|head {BE}bob(?:s|bing)"]),
    ("head_pitch_std", "low", [
        r"(?:rigid|still|steady|fixed|stiff) head",
        rf"head {BE}{ADV}(?:rigid|still|steady|fixed|motionless)"]),
    # -- trunk and body height ------------------------------------------------------------------
    ("spine_flexion trunk_lean_mean", "high", [
        r"slump(?:s|ed|ing)?|slouch(?:es|ed|ing)?|hunch(?:es|ed|ing)?(?: over| forwards?)?",
        r"(?:rounded|curved) (?:back|shoulders|upper back|spine)",
        rf"(?:round|curv)(?:es|s|ed|ing)? {DET}(?:upper )?(?:back|spine|shoulders)",
        r"collapsed (?:posture|chest|trunk|torso|upper body)|(?:caved(?:-in| in)?|sunken) chest"]),
    ("trunk_lean_mean spine_flexion", "high", [
        (rf"stoop(?:s|ed|ing)?|(?:lean(?:s|ed|ing)?|bent|bends|bending|bow(?:s|ed|ing)?|inclined|"
         rf"tilted|tilts|tilting|pitched) {ADV}(?:forwards?|over)"),
        r"forward(?:-leaning| lean(?:ing)?| tilt| inclination| bend)",
        rf"lean(?:s|ed|ing)? {DET}(?:trunk|torso|upper body|body) {ADV}(?:forwards?|over)",
        (rf"(?:trunk|torso|upper body|body) {BE}{ADV}(?:leaning|leans|bent|tilted|inclined|pitched|"
         rf"angled) forwards?")]),
    ("trunk_lean_mean spine_flexion", "low", [
        r"upright|erect",
        r"(?:straight|straightened|tall) (?:back|spine|posture|trunk|torso|upper body)",
        rf"(?:back|spine|posture|trunk|torso) {BE}{ADV}(?:straight|upright|erect|straightened)",
        r"straighten(?:s|ed|ing)? up",
        r"(?:stands?|standing|sits|sitting|walks|walking) (?:up )?straight"]),
    ("spine_flexion trunk_lean_mean", "low", [
        r"chest (?:out|lifted|raised|expanded|puffed out|open)",
        r"(?:puffed(?:-out| out)|open|expanded|lifted) chest|arched back"]),
    ("trunk_lean_mean", "low", [
        rf"lean(?:s|ed|ing)? {ADV}(?:back(?:wards?)?|away)|reclin(?:ed|es|ing)|backwards? lean",
        (rf"(?:trunk|torso|upper body) {BE}{ADV}(?:leaning|tilted|inclined|pitched) "
         rf"back(?:wards?)?")]),
    ("trunk_roll_std trunk_lean_std", "high", [
        r"sway(?:s|ed|ing)?|rock(?:s|ed|ing)? (?:from )?side to side|waddl\w+|swagger\w*",
        r"side-to-side (?:sway|motion|movement)"]),
    ("trunk_lean_std trunk_roll_std", "high", [
        r"rock(?:s|ed|ing)? (?:back and forth|forward and back(?:wards?)?)|rocking"]),
    ("trunk_lean_std trunk_roll_std", "low", [
        r"(?:rigid|stiff|tense) (?:trunk|torso|upper body|back|spine|posture|body)",
        rf"(?:trunk|torso|upper body|body|posture) {BE}{ADV}(?:rigid|stiff|tense)"]),
    ("head_height hip_height", "high", [
        rf"stands? tall|standing tall|walks? tall|walking tall|draws? {SELF} up",
        r"(?:full|drawn-up) height|tall posture"]),
    ("hip_height head_height", "low", [
        (r"(?:lowered|sinking|sagging|low) (?:body|stance|pelvis|hips|centre of gravity|"
         r"center of gravity)")]),
    # -- shoulders ------------------------------------------------------------------------------
    ("shoulder_elevation", "high", [
        (r"(?:raised|lifted|elevated|tense|tensed|tight|hunched-up|hunched up|drawn-up|shrugged|"
         r"high) shoulders"),
        (rf"shoulders {BE}{ADV}(?:raised|lifted|elevated|tense|tensed|tight|hunched up|drawn up|"
         rf"pulled up|hiked up|up|high)"),
        rf"shrug(?:s|ged|ging)?|(?:raises|raising|lifts|lifting) {DET}shoulders"]),
    ("shoulder_elevation", "low", [
        (r"(?:dropped|drooping|droopy|sagging|slumped|slumping|lowered|fallen|relaxed|low|"
         r"hanging|loose) shoulders"),
        (rf"shoulders {BE}{ADV}(?:drop(?:ped|s)?|droop(?:ing|s)?|sag(?:ging|s)?|"
         rf"slump(?:ed|ing|s)?|lowered|fall(?:en|ing)?|relaxed|down|low|hanging|hang|loose)"),
        rf"(?:drops|dropping|lowers|lowering|relaxes|relaxing) {DET}shoulders"]),
    # -- arms: expansion, height, swing, flexion ------------------------------------------------
    ("arm_expansion elbow_expansion body_volume", "high", [
        r"expansive(?:ly)?|(?:wide|sweeping|broad|large|big) gestures",
        r"(?:open|wide|wide-open|outstretched|out-stretched|spread|extended|outspread) arms",
        (rf"arms {BE}{ADV}(?:held |thrown |flung |spread |stretched |extended |reaching )?"
         rf"(?:open|wide|outwards?|out(?! of)|outstretched|apart|spread|extended|"
         rf"away from {DET}(?:body|sides|torso|trunk))"),
        (rf"(?:spreads|spreading|spread|opens|opening|opened|flings|flinging|throws|throwing|"
         rf"stretches|stretching|extends|extending|widens) {DET}arms"
         rf"(?: (?:wide|open|out(?:wards?)?|apart))?"),
        r"(?:open|expanded) (?:posture|body|stance|gestures?)|takes? up (?:a lot of )?space"]),
    ("elbow_expansion arm_expansion", "high", [
        rf"elbows {BE}{ADV}(?:out|flared|wide|akimbo|held out|sticking out)|flared elbows",
        rf"(?:arms )?akimbo|hands on {DET}hips"]),
    ("arm_expansion elbow_expansion body_volume", "low", [
        (rf"(?:arms|hands|elbows) {BE}{ADV}(?:held |kept |pulled |drawn |pressed |pinned |"
         rf"tucked |wrapped |folded |crossed )?(?:(?:held|kept|pulled|drawn|tucked|pressed|"
         rf"pinned) in|close|tight(?:ly)?|tucked|pinned|pressed|folded|crossed|wrapped)"
         rf"(?: (?:in|to|against|around|near|by|across|over|at|into) {DET}"
         rf"(?:body|sides?|torso|trunk|chest|waist|stomach|belly))?"),
        r"(?:crossed|folded|tucked|tucked-in|contracted|closed|pinned) arms",
        rf"(?:crosses|crossing|folds|folding|tucks|tucking|wraps|wrapping|hugs|hugging) {DET}arms",
        rf"(?:hugs?|hugging) {SELF}|self-hug(?:ging)?|makes? {SELF} small",
        (r"(?:contracted|closed|closed-off|compact|withdrawn|small|shrunken|self-protective) "
         r"(?:posture|body|stance|pose|body posture)"),
        r"curl(?:s|ed|ing)? up|shrink(?:s|ing)?|shrunk"]),
    ("hand_height_peak hand_height_mean", "high", [
        rf"(?:raises|raising|raised|lifts|lifting|lifted|upraised|uplifted) {DET}{LIMB}{UP}*",
        (rf"(?:throws|throwing|threw|thrown|thrusts|thrusting|puts|putting|holds|holding|held|"
         rf"reaches|reaching|stretches|stretching|pumps|pumping|waves|waving|shoots|shooting|"
         rf"flings|flinging) {DET}{LIMB}{UP}+"),
        (rf"{LIMB} {BE}{ADV}(?:raised|lifted|up(?:wards?)?|high|overhead|aloft|in the air|"
         rf"above {DET}heads?|held high|held up|thrown up|reaching up)")]),
    ("hand_height_mean hand_height_peak", "low", [
        (rf"(?:arms|hands) {BE}{ADV}(?:hang(?:s|ing)?|dangl(?:e|es|ing)|limp|droop(?:s|ing)?|"
         rf"drop(?:s|ped)?|lowered|low|down|{SIDES})(?: {ADV}(?:down|low|{SIDES}))?"),
        r"(?:hanging|dangling|limp|lowered|dropped|drooping|low|slack) (?:arms|hands)",
        (rf"(?:lowers|lowering|drops|dropping|lets|letting) {DET}(?:arms|hands)"
         rf"(?: (?:fall|drop|hang|down))?")]),
    ("arm_swing", "high", [
        (r"(?:large|wide|big|broad|pronounced|strong|vigorous|ample|exaggerated|full|generous|"
         r"energetic|free|loose) arm[-\s]swings?"),
        (rf"arm[-\s]swing {BE}{ADV}(?:large|wide|big|broad|pronounced|ample|exaggerated|full|"
         rf"strong|vigorous)"),
        (rf"(?:arms {BE}{ADV}swing(?:s|ing)?|(?:swings|swinging) {DET}arms) {ADV}"
         rf"(?:widely|freely|vigorously|strongly|energetically|a lot|broadly|high)"),
        r"swinging arms"]),
    ("arm_swing", "low", [
        (r"(?:little|less|small|limited|restricted|reduced|minimal|no|barely any|hardly any|"
         r"lack of|without|absence of|weak|stiff|slight|diminished|short|tiny|absent|subdued) "
         r"arm[-\s]swings?"),
        (rf"arm[-\s]swing {BE}{ADV}(?:small|limited|reduced|minimal|restricted|slight|weak|absent|"
         rf"diminished|subdued|short|tiny)"),
        rf"arms {ADV}(?:barely|hardly|scarcely) swing(?:s|ing)?",
        rf"(?:barely|hardly|scarcely) swings? {DET}arms",
        rf"(?:swings|swinging) {DET}arms {ADV}(?:little|slightly|less)"]),
    ("elbow_flexion_mean", "high", [
        r"(?:bent|flexed|crooked) (?:arms|elbows)",
        rf"(?:arms|elbows) {BE}{ADV}(?:bent|flexed|crooked)"]),
    ("elbow_flexion_mean", "low", [
        r"(?:straight|stiff|locked) (?:arms|elbows)",
        rf"(?:arms|elbows) {BE}{ADV}(?:straight|straightened|locked)"]),
    # -- steps, stance, cadence, bounce, feet, knees --------------------------------------------
    ("stride_length", "high", [
        r"(?:long|large|big|lengthy|sweeping|ample|generous) (?:strides?|steps?)",
        r"striding|strides (?:out|forward|ahead|across|purposefully|confidently)",
        rf"lengthen(?:s|ed|ing)? {DET}(?:stride|steps?)",
        rf"(?:strides?|steps) {BE}{ADV}(?:long|large|big)"]),
    ("stride_length foot_lift", "low", [
        r"(?:short|small|tiny|little|shortened|reduced|mincing|shuffling|baby) (?:strides?|steps?)",
        r"shuffl(?:e|es|ed|ing)|short-stepped",
        rf"(?:strides?|steps) {BE}{ADV}(?:short|small|reduced|shortened)"]),
    ("step_width", "high", [
        r"wide(?:-legged| legged| stance| base| gait)|broad stance|straddl\w+",
        rf"(?:feet|legs) {BE}{ADV}(?:wide )?(?:apart|spread)|(?:spread|planted) (?:feet|legs)"]),
    ("step_width", "low", [
        r"narrow (?:stance|base|gait|steps?)|feet together",
        rf"(?:feet|legs) {BE}{ADV}close together"]),
    ("stride_frequency root_speed_mean", "high", [
        (r"(?:quick|rapid|fast|brisk|hurried|high|quickened) (?:steps|footsteps|stepping|cadence|"
         r"step rate|step frequency|stride frequency|tempo)"),
        rf"cadence {BE}{ADV}(?:high|fast|quick|rapid)"]),
    ("stride_frequency root_speed_mean", "low", [
        (r"(?:slow|low|leisurely|unhurried|sluggish) (?:steps|footsteps|stepping|cadence|"
         r"step rate|step frequency|stride frequency|tempo)"),
        rf"cadence {BE}{ADV}(?:low|slow)"]),
    ("pelvis_bounce head_bounce", "high", [
        r"bounc(?:y|ing|es|e)|springy|springing|skip(?:s|ping)|hop(?:s|ping)|prancing|jaunty",
        r"(?:a lot of|lots of|much|plenty of|high|strong) (?:vertical )?bounc(?:e|ing)",
        rf"spring in {DET}steps?|light(?:[-\s]footed| steps?| gait| on {DET}feet)|bobbing|bobs"]),
    ("pelvis_bounce head_bounce", "low", [
        r"(?:low|little|reduced|minimal|small|slight) (?:vertical )?bounc(?:e|ing)",
        r"flat(?:-footed| gait| steps?| walk)|plod(?:s|ding|ded)?|trudg(?:e|es|ed|ing)",
        r"heavy(?:[-\s]footed| steps?| footsteps| gait| tread| walk| feet)",
        r"lumber(?:s|ing)|leaden"]),
    ("pelvis_jerk", "high", [rf"stomp(?:s|ed|ing)?|stamp(?:s|ed|ing) {DET}(?:feet|foot)"]),
    ("foot_lift knee_flexion_range", "high", [
        rf"(?:lifts|lifting|raises|raising) {DET}(?:feet|knees) {ADV}high",
        r"high(?:-stepping| steps| knee lift)"]),
    ("foot_lift stride_length", "low", [
        rf"drag(?:s|ged|ging)? {DET}feet|feet {BE}{ADV}dragging|dragging (?:feet|steps)",
        r"scuff(?:s|ed|ing)?"]),
    ("knee_flexion_mean", "high", [
        r"(?:bent|flexed|bending|soft|slightly bent|deeply bent) knees",
        rf"knees {BE}{ADV}(?:bent|flexed|bending|buckl\w+|soft)|bend(?:s|ing)? {DET}knees",
        r"crouch(?:es|ed|ing)?|squat(?:s|ting|ted)?"]),
    ("knee_flexion_mean", "low", [
        r"(?:stiff|straight|locked|rigid|straightened) (?:knees|legs)",
        rf"knees {BE}{ADV}(?:stiff|straight|locked|extended|rigid)",
        rf"legs {BE}{ADV}(?:stiff|straight|locked|rigid)",
        r"stiff-legged|stiff-kneed|straight-legged"]),
    # -- smoothness -----------------------------------------------------------------------------
    ("pelvis_jerk", "high", [r"(?:jerky|abrupt|choppy) (?:gait|steps|walk|stride)"]),
    ("pelvis_jerk", "low", [r"(?:smooth|fluid|flowing) (?:gait|steps|walk|stride|stepping)"]),
    ("wrist_jerk wrist_accel_mean pelvis_jerk", "high", [
        r"jerk(?:y|ily|iness|s|ing)?|abrupt(?:ly|ness)?|sudden(?:ly|ness)?|forceful(?:ly)?",
        rf"(?:sharp|choppy|staccato|explosive|punchy|twitchy) {MOVES}",
        r"staccato|explosive(?:ly)?|twitch(?:y|es|ing)?"]),
    ("wrist_jerk wrist_accel_mean pelvis_jerk", "low", [
        r"smooth(?:ly|ness)?|fluid(?:ly|ity)?|flowing|graceful(?:ly)?|gentle|gently|languid(?:ly)?",
        rf"soft(?:ly)? {MOVES}|sustained {MOVES}"]),
    # -- turning, duration ----------------------------------------------------------------------
    ("turn_rate", "high", [
        (r"turn(?:s|ing)? (?:around|round|a lot|frequently|repeatedly|often|back and forth|"
         r"several times)|(?:frequent|many|sudden) turns|changes? direction"),
        r"(?:looks|looking|glances|glancing|peers|peering) around",
        rf"scans? {DET}(?:surroundings|room)",
        r"scanning|spin(?:s|ning)|twirl(?:s|ing)?|pivot(?:s|ing)|whirl(?:s|ing)?|pacing"]),
    ("turn_rate", "low", [
        (rf"(?:walks|moves|heads|goes|walking|moving|heading|going|advances|advancing) {ADV}"
         rf"(?:straight|directly) (?:ahead|forwards?)"),
        r"in a straight line|(?:straight|direct) path|steady heading|without turning(?: around)?"]),
    ("duration", "high", [
        r"(?:takes|taking|took) (?:a )?(?:long|longer|considerable) (?:time|while)",
        r"linger(?:s|ed|ing)|prolonged|drawn[-\s]out",
        r"lengthy (?:movement|action|performance|clip|sequence)"]),
    ("duration", "low", [
        r"brief (?:movement|motion|action|clip|gesture|performance|sequence)",
        r"short (?:movement|action|clip|performance|sequence)|over quickly",
        r"(?:takes|taking|took) (?:little|a short) time",
        rf"(?:movement|motion|action|clip|gesture|performance|sequence) {BE}{ADV}brief"]),
]

# Descriptor names used as words ("low quantity of motion", "arm_swing: high"); added last.
for _name in DESCRIPTOR_NAMES:
    _alias = _name.removesuffix("_mean").replace("_", r"[\s_]")
    _alias = f"(?:{_alias}(?:[\\s_]mean)?)" if _name.endswith("_mean") else f"(?:{_alias})"
    for _words, _dir in (("low|reduced|decreased|small", "low"),
                         ("high|elevated|increased|large", "high")):
        LEXICON.append((_name, _dir, [rf"(?:{_words}) {_alias}",
                                      rf"{_alias}\s*[:=]? {BE}{ADV}(?:{_words})"]))
del _name, _alias, _words, _dir

# Negators flip the claims after them within NEGATION_WORDS words of the same clause.
# Counterfactual markers there drop the claim. A clause ends at punctuation or a contrast word.
NEGATION_WORDS = 4
_NEGATOR = re.compile(
    r"\b(?:not(?!\s+(?:only|just|merely|surprisingly)\b)|no(?!\s+(?:doubt|wonder|question)\b)|"
    r"never|neither|nor|nothing|none|cannot|without(?!\s+(?:doubt|question)\b)|hardly|barely|"
    r"scarcely|seldom|rarely|lacks?|lacking|lack of|absence of|free of|devoid of|far from|"
    r"anything but|rather than|instead of|(?<!more or\s)less|fails? to|failing to|inability to|"
    r"unable to)\b|n['’]t\b",
    re.IGNORECASE)
_COUNTERFACTUAL = re.compile(r"\b(?:would|unlike|(?<!rather\s)than|as opposed to|compared "
                             r"(?:to|with)|in contrast to|if)\b", re.IGNORECASE)
# "and"/"or" before a determiner starts a new noun phrase, which a negation before it does not
# reach: "their lack of bounce and their low overall movement" says the movement is low.
_CLAUSE_END = re.compile(r"[.;:!?,()\[\]\n]|\b(?:(?<!anything\s)but|yet|while|whereas|although|"
                         r"though|however|because|(?:and|or)(?=\s+(?:their|his|her|its|the|a|an)"
                         r"\b))\b", re.IGNORECASE)
# A low degree of something present states its low level: "a low degree of tail-bouncing",
# "a small amount of bouncing", "a low-level bounce" claim little bounce, not bounce (after "of"
# one word may sit between: the "tail-" of "tail-bouncing", an adjective).
_DIMINISHED = re.compile(r"\b(?:low|little|small|minimal|slight|limited|reduced|modest)"
                         r"(?: (?:degree|level|amount|measure) of (?:[A-Za-z]+(?:-| ))?|"
                         r"-(?:level|amplitude|intensity) )$", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
LEVELS = ("low", "typical", "high")


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern
    descriptors: tuple[tuple[str, bool], ...]  # (name, inverted)
    direction: str
    order: int


def compile_lexicon(rows: Sequence[tuple[str, str, Sequence[str]]]) -> list[_Rule]:
    """Compile (descriptors, direction, patterns) rows; the names must be descriptors."""
    rules = []
    for order, (names, direction, patterns) in enumerate(rows):
        descs = tuple((n.lstrip("-"), n.startswith("-")) for n in names.split())
        bad = [n for n, _ in descs if n not in DESCRIPTORS_BY_NAME]
        if bad or not descs or direction not in ("low", "high") or not patterns:
            raise ValueError(f"lexicon row {order} ({names!r}, {direction!r}): needs known "
                             f"descriptor names (unknown: {bad}), 'low' or 'high' and at least "
                             f"one pattern")
        pattern = "|".join(f"(?:{p})" for p in patterns).replace(" ", r"\s+")
        # word boundaries; the end may not fall inside a hyphenated word ("fast-forwarded")
        regex = re.compile(rf"\b(?:{pattern})\b(?!-\w)", re.IGNORECASE)
        rules.append(_Rule(regex, descs, direction, order))
    return rules


_DEFAULT_RULES = compile_lexicon(LEXICON)


@dataclass
class Claim:
    phrase: str
    start: int
    descriptor: str
    claimed: str  # "low" | "high", after negation and the descriptor's sense
    measured: str | None
    value: float | None
    unit: str
    status: str  # "supported" | "weak" | "contradicted" | "unverifiable"
    negated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaithfulnessResult:
    claims: list[Claim] = field(default_factory=list)

    @property
    def contradictions(self) -> list[Claim]:
        return [c for c in self.claims if c.status == "contradicted"]

    @property
    def faithful(self) -> bool:
        return not self.contradictions

    @property
    def checked(self) -> int:
        return sum(c.status != "unverifiable" for c in self.claims)

    def statement_counts(self) -> dict[str, int]:
        """Distinct checked statements by status (supported, weak, contradicted). Claims that
        put the same descriptor at the same level ("walks slowly", "a slow pace") are one
        statement, so a text that repeats a claim does not count it again."""
        seen = {(c.descriptor, c.claimed, c.status) for c in self.claims
                if c.status != "unverifiable"}
        return {s: sum(status == s for _, _, status in seen) for s in CHECKED_STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {"faithful": self.faithful, "checked": self.checked,
                "claims": [c.to_dict() for c in self.claims],
                "contradictions": [c.to_dict() for c in self.contradictions]}


def _context(text: str, start: int) -> tuple[bool, bool]:
    """(negated, counterfactual) for a claim starting at `start`: markers in its clause that
    are at most NEGATION_WORDS words before it."""
    before = text[max(0, start - 200):start]
    ends = list(_CLAUSE_END.finditer(before))
    clause = before[ends[-1].end():] if ends else before
    near = lambda rx: any(len(clause[m.end():].split()) <= NEGATION_WORDS
                          for m in rx.finditer(clause))
    return near(_NEGATOR), near(_COUNTERFACTUAL)


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _measure(evidence: Mapping, rule: _Rule) -> tuple[str, bool, str | None, float | None, str]:
    """The descriptor to compare with: the first with a level, else the first present."""
    chosen = None
    for name, inverted in rule.descriptors:
        entry = evidence.get(name)
        if not isinstance(entry, Mapping):
            continue
        level = entry.get("level")
        level = level.lower() if isinstance(level, str) and level.lower() in LEVELS else None
        value = _number(entry.get("value"))
        unit = entry.get("unit") or DESCRIPTORS_BY_NAME[name].unit
        if level is not None:
            return name, inverted, level, value, unit
        chosen = chosen or (name, inverted, None, value, unit)
    if chosen:
        return chosen
    name, inverted = rule.descriptors[0]
    return name, inverted, None, None, DESCRIPTORS_BY_NAME[name].unit


def check_faithfulness(text: str, evidence: Mapping[str, Mapping] | None,
                       lexicon: Sequence[tuple[str, str, Sequence[str]]] | None = None
                       ) -> FaithfulnessResult:
    """Claims of `text` about movement, each compared with the evidence (see module doc)."""
    rules = _DEFAULT_RULES if lexicon is None else compile_lexicon(lexicon)
    evidence = evidence if isinstance(evidence, Mapping) else {}
    text = text or ""
    plain = _TAG.sub(lambda m: " " * len(m.group()), text)  # markup out, offsets kept
    found = [(m.start(), m.end(), r) for r in rules for m in r.regex.finditer(plain)]
    found.sort(key=lambda f: (f[0] - f[1], f[2].order, f[0]))  # longest, then earliest row
    taken: list[tuple[int, int, _Rule]] = []
    for s, e, r in found:
        if all(e <= ts or s >= te for ts, te, _ in taken):
            taken.append((s, e, r))
    result = FaithfulnessResult()
    for s, e, rule in sorted(taken, key=lambda f: f[0]):
        negated, counterfactual = _context(plain, s)
        if counterfactual:
            continue
        name, inverted, level, value, unit = _measure(evidence, rule)
        claimed = rule.direction
        if claimed == "high" and _DIMINISHED.search(plain[max(0, s - 60):s]):
            claimed = "low"
        if negated != inverted:
            claimed = "low" if claimed == "high" else "high"
        other = "high" if claimed == "low" else "low"
        if level is None:
            status = "unverifiable"
        elif level == other:
            status = "contradicted"
        elif level == claimed or negated:  # "not fast" is true of a typical speed
            status = "supported"
        else:
            status = "weak"
        result.claims.append(Claim(text[s:e], s, name, claimed, level, value, unit, status,
                                   negated))
    return result


def summarise(results: Iterable[FaithfulnessResult | Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over many drafts' checks (results or their to_dict(); empty dicts are skipped)."""
    drafts = faithful = skipped = 0
    statuses: Counter = Counter()
    contradicted: Counter = Counter()
    for r in results:
        d = r.to_dict() if isinstance(r, FaithfulnessResult) else r
        if not d or "faithful" not in d:
            skipped += 1
            continue
        drafts += 1
        faithful += bool(d["faithful"])
        statuses.update(c.get("status") for c in d.get("claims", []))
        contradicted.update(c.get("descriptor") for c in d.get("contradictions", []))
    top = sorted(contradicted.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {"drafts": drafts, "faithful": faithful,
            "faithful_share": faithful / drafts if drafts else None,
            "claims": sum(statuses.values()),
            "checked": sum(statuses[s] for s in CHECKED_STATUSES),
            "statuses": {s: statuses[s] for s in ("supported", "weak", "contradicted",
                                                  "unverifiable")},
            "most_contradicted": [{"descriptor": n, "count": c} for n, c in top],
            "skipped": skipped}
