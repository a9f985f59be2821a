"""Behaviour of the shipped champion (models/): invariance, direction, minimum functionality per frame.

The sentences are written for these tests, following the codebook; none is in labels/.
"""

from pathlib import Path

import numpy as np
import pytest

from rhetoric.registry import Registry

MODELS = Path(__file__).resolve().parents[2] / "models"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def champion():
    model = Registry(MODELS).champion()
    assert model is not None, "models/ has no champion; run `rhetoric train` and commit models/"
    return model


def frames_of(champion, texts):
    labels, _ = champion.predict(texts)
    return [{f for f, on in zip(champion.frames, row) if on} for row in labels]


CLEAR = {
    "multipolarity": [
        "Lavrov said the formation of a multipolar world is an irreversible process.",
        "The two leaders called for a more just and democratic world order.",
        "Wang said the world is moving towards multi-polarization and nobody can stop it.",
        "A new world order is taking shape, the Russian foreign minister told students.",
        "Beijing wants global governance reformed so that developing countries have a greater say.",
        "Putin said new centres of power are emerging in Asia, Africa and Latin America.",
        "The ministers agreed to promote the democratization of international relations.",
        "The rise of the Global South is reshaping the international order, the envoy said.",
        "Xi said the world needs a fairer international order that reflects the interests of all nations.",
        "Moscow and Beijing see themselves as champions of a polycentric world.",
        "The era of a world run by a single power centre is over, Lavrov said, and a multipolar system is emerging.",
        "China and Russia will work together to build a multipolar world, the statement said.",
    ],
    "anti_sanctions": [
        "Lavrov said the illegal unilateral sanctions imposed by the West would fail.",
        "The ministers condemned the sanctions as counterproductive and illegitimate.",
        "China firmly opposes unilateral sanctions that have no basis in international law, the spokesperson said.",
        "The sanctions war waged by Washington is hurting ordinary people around the world, Wang said.",
        "Russia will keep trading with its partners despite the illegal sanctions pressure, the minister said.",
        "The spokesperson said the sanctions were an illegal tool of economic blackmail.",
        "Beijing rejects long-arm jurisdiction and the abuse of unilateral sanctions, the ministry said.",
        "The parties noted the counterproductive nature of the illegal sanctions.",
        "Sanctions pressure will not break our economy, Putin said.",
        "The minister called the Western sanctions an illegitimate economic blockade.",
        "Zakharova said the illegal restrictions imposed by Brussels were doomed to fail.",
        "The two countries pledged to resist unilateral sanctions and protect their companies.",
    ],
    "peace_talks": [
        "Wang reaffirmed China's support for peace talks between Russia and Ukraine.",
        "Lavrov briefed his counterpart on the negotiation process with Kyiv.",
        "The conflict can only be resolved through a political settlement, the minister said.",
        "China called for a ceasefire and the resumption of negotiations.",
        "The spokesperson said any peace conference must be recognised by both Russia and Ukraine.",
        "Beijing's peace plan calls for dialogue and negotiation to end the war.",
        "Lavrov said talks on Ukraine that ignore Moscow's position are futile.",
        "The two sides stressed that a political solution to the Ukraine crisis is the only way out.",
        "Wang said China will continue to play a constructive role in promoting peace talks.",
        "Russia is open to negotiations on a settlement, the foreign minister said.",
        "The envoy urged both sides to return to the negotiating table and agree a ceasefire.",
        "The ministers discussed prospects for a peaceful settlement of the conflict in Ukraine.",
    ],
    "anti_hegemony": [
        "Wang said China opposes hegemonism and power politics in all their forms.",
        "Lavrov accused Washington of seeking global domination.",
        "The ministers denounced the unilateral bullying practised by the United States.",
        "The spokesperson said the US was clinging to a Cold War mentality and bloc confrontation.",
        "NATO expansion to the east threatens the security of the whole region, Lavrov said.",
        "China will never accept the so-called rules-based order imposed by a few Western countries.",
        "Beijing rejected Washington's policy of containment and coercion.",
        "The statement opposed hegemony and any attempt to impose one country's will on others.",
        "Zakharova said the West was trying to impose its diktat on the rest of the world.",
        "The US uses its dollar hegemony to bully other countries, the ministry said.",
        "Lavrov said the Americans want to preserve their hegemony at any cost.",
        "Wang criticised the finger-pointing and pressure coming from Washington.",
    ],
    "": [
        "Lavrov arrived in Beijing on Wednesday for a two-day visit.",
        "The two ministers met in Huangshan to discuss the situation in Afghanistan.",
        "Trade between China and Russia rose by a third last year.",
        "The meeting comes a month after Russia sent troops into Ukraine, triggering Western sanctions.",
        "Relations are solid as a rock and will stand the test of the volatile international situation.",
        "US officials have accused China of signalling willingness to provide aid to Russia.",
        "The foreign minister will travel to India next week.",
        "The talks with Wang Yi lasted three hours, the ministry said.",
        "The delegation visited a factory producing electric cars.",
        "Both sides signed agreements on energy and agriculture.",
        "The press conference was held in the ministry's new building.",
        "Several companies have left the Russian market since March.",
    ],
}


@pytest.mark.parametrize("frame", list(CLEAR))
def test_minimum_functionality_per_frame(champion, frame):
    predicted = frames_of(champion, CLEAR[frame])
    if frame:
        hits = sum(frame in p for p in predicted)
    else:
        hits = sum(not p for p in predicted)
    misses = [t for t, p in zip(CLEAR[frame], predicted) if (frame in p) != bool(frame) or (not frame and p)]
    assert hits >= 10, f"{frame or 'no frame'}: only {hits}/12 right; missed {misses}"


INVARIANCE = [
    ("Lavrov said the illegal sanctions would fail, speaking on 30 March 2022.",
     "Zakharova said the illegal sanctions would fail, speaking on 12 June 2024."),
    ("Wang Yi said the world is moving towards multipolarity.", "Li Qiang said the world is moving towards multipolarity."),
    ("Putin said in 2022 that Russia remains open to peace talks with Ukraine.",
     "Medvedev said in 2019 that Russia remains open to peace talks with Ukraine."),
    ("Wang said in Beijing that the US seeks hegemony.", "Qin said in Shanghai that the US seeks hegemony."),
    ("Trade between the two countries grew 30 percent to 147 billion dollars.",
     "Trade between the two countries grew 12 percent to 95 billion dollars."),
    ("Lavrov met Wang Yi on Wednesday in Huangshan.", "Shoigu met Xi Jinping on Friday in Tunxi."),
]


@pytest.mark.parametrize("original, changed", INVARIANCE)
def test_names_dates_and_numbers_do_not_change_frames(champion, original, changed):
    assert frames_of(champion, [original]) == frames_of(champion, [changed])


DIRECTION = [
    ("Washington imposed sanctions on Russian banks.", "Washington imposed illegal sanctions on Russian banks."),
    ("Russia faces Western sanctions over the war in Ukraine.",
     "Russia faces illegal Western sanctions over the war in Ukraine."),
    ("Chinese companies fear secondary sanctions from Washington.",
     "Chinese companies fear illegal secondary sanctions from Washington."),
    ("The sanctions were discussed at the meeting.", "The illegal sanctions were discussed at the meeting."),
    ("The minister commented on the sanctions.", "The minister said the sanctions were illegal."),
]


@pytest.mark.parametrize("neutral, loaded", DIRECTION)
def test_calling_sanctions_illegal_raises_anti_sanctions(champion, neutral, loaded):
    column = champion.frames.index("anti_sanctions")
    _, scores = champion.predict([neutral, loaded])
    # compared as log-odds: calibrated scores saturate near 0 and 1, where a real rise looks tiny
    log_odds = np.log(scores[:, column]) - np.log1p(-scores[:, column])
    assert log_odds[1] > log_odds[0] + 0.5, scores[:, column]


def test_scores_are_probabilities_with_thresholds(champion):
    _, scores = champion.predict(CLEAR["peace_talks"] + CLEAR[""])
    assert np.all((scores >= 0) & (scores <= 1))
    assert set(champion.metadata["thresholds"]) == set(champion.frames)


# Real-style hard negatives: what news and official text say around the frames without making their claim.
# The first three are the false alarms a new user saw on real war reporting (issue 8).
HARD_NEGATIVES = {
    "reporting that quotes without a frame": [
        '"It is our Russian, Russian city," Medvedev said.',
        "I had the honour of being invited here and I couldn't wait to come to Ukraine.",
        "Subscribe to Pravda.",
        '"We will rebuild every school," the mayor told reporters in Kharkiv.',
        "The Kremlin spokesman declined to comment on the report.",
    ],
    "sanctions announced, defended or feared": [
        "The EU adopted its 14th package of sanctions against Russia on Monday.",
        "Banks in Vienna have cut ties with Russian clients for fear of secondary sanctions.",
        "The Treasury said the sanctions were working and had cut Moscow's oil revenue by a third.",
        "Shares of the steelmaker fell 8% after it was added to the US sanctions list.",
        "The new measures freeze the assets of 48 individuals and 35 entities.",
    ],
    "Western officials criticising Russia or China": [
        "Blinken said Russia's brutal war of aggression had killed thousands of civilians.",
        "The NATO secretary general accused Beijing of helping Moscow rebuild its defence industry.",
        "US officials warned China against supplying weapons to Russia.",
        "The G7 ministers condemned Russia's attacks on Ukraine's energy grid.",
        "Washington called Moscow's claims about biological laboratories a lie.",
    ],
    "war reporting that mentions NATO, talks or the West": [
        "Ukrainian forces repelled three attacks near Pokrovsk overnight, the general staff said.",
        "NATO defence ministers will meet in Brussels on Thursday.",
        "The delegations arrived in Istanbul on Tuesday evening and will stay at the same hotel.",
        "Western tanks arrived in Poland by rail before being moved to the border.",
        "A drone struck an oil depot in the Bryansk region, the governor said.",
    ],
}


@pytest.mark.parametrize("kind", list(HARD_NEGATIVES))
def test_real_style_hard_negatives_carry_no_frame(champion, kind):
    predicted = frames_of(champion, HARD_NEGATIVES[kind])
    flagged = [(t, sorted(p)) for t, p in zip(HARD_NEGATIVES[kind], predicted) if p]
    assert len(flagged) <= 1, f"{kind}: {flagged}"
