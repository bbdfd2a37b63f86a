"""Human review of drafted explanations in Label Studio (docs/review.md).

server       the local Label Studio: start / stop / status under EAI_HOME
credentials  the reviewer account and API token (0600, never printed in full)
connection   which server a command talks to (--url + token, or the local one)
template     the labeling config (templates/label_studio/emotion_review.xml)
display      the evidence and draft panels as escaped HTML
mapping      pure functions: draft -> task/prediction, annotation -> CuratedPair
curated      the CuratedPair line format
media        clip renders (MP4) cached by clip id under the local-files root
push / pull / status   the three commands
"""
