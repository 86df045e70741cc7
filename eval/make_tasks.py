#!/usr/bin/env python3
"""Writes the evaluation data in this folder from templates, reproducibly (fixed seed).

    python3 eval/make_tasks.py        # rewrites eval/tasks/*.jsonl and eval/stories.txt

- tasks/recall-name.jsonl   multiple choice: a character is introduced, a few unrelated sentences
                            follow, and the story ends where only the introduced name fits.
- tasks/recall-object.jsonl cloze: a character finds an object, filler follows, and the story asks
                            for the object again; correct when every continuation token is top-1.
- tasks/capitals.jsonl      multiple choice, the paper's one-shot template: "Q: What is the capital of
                            Spain?\nA: Madrid\nQ: What is the capital of X?\nA:" (France as the example
                            when X is Spain), four capitals as choices (for general-purpose models).
- stories.txt               short TinyStories-style stories, one per paragraph, for perplexity.
The models are small, so the vocabulary stays within TinyStories' simple words.
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20240501)

GIRLS = ["Lily", "Sue", "Anna", "Mia", "Lucy", "Amy", "Kate", "Zoe"]
BOYS = ["Tom", "Ben", "Tim", "Max", "Sam", "Jack", "Bob", "Joe"]
NAMES = GIRLS + BOYS
KINDS = [("girl", "She", "her", GIRLS), ("boy", "He", "his", BOYS)]
OBJECTS = ["ball", "box", "hat", "toy", "cake", "book", "kite", "doll", "car", "cup", "shell", "stick", "flower", "rock", "key", "bird"]
COLOURS = ["red", "blue", "big", "small", "shiny", "green", "yellow", "pretty", "soft", "little"]
PLACES = ["park", "garden", "house", "forest", "yard", "room", "beach", "shop"]
FILLER = [
    "The sun was warm and the sky was blue.",
    "A bird sang a happy song in the tree.",
    "The wind moved the green leaves.",
    "It was a very nice day.",
    "A dog ran across the grass and barked.",
    "The flowers were pretty and bright.",
    "Mom was making soup in the kitchen.",
    "There was a big tree near the pond.",
    "The clouds looked like soft white sheep.",
    "A little cat slept in the sun.",
]


def filler(k):
    return " ".join(rng.sample(FILLER, k))


def recall_name(n):
    items = []
    for _ in range(n):
        kind, subj, poss, names = rng.choice(KINDS)
        name = rng.choice(names)
        place = rng.choice(PLACES)
        obj = rng.choice(OBJECTS)
        others = rng.sample([x for x in names if x != name], 3)  # same gender: the pronoun gives nothing away
        context = (f"Once upon a time, there was a little {kind} named {name}. {subj} liked to play in the {place}. "
                   f"{filler(rng.randint(2, 4))} One day, {subj.lower()} found a {obj}. "
                   f"{filler(rng.randint(1, 3))} The {kind} smiled. {poss.capitalize()} name was")
        choices = [" " + name] + [" " + o for o in others]
        rng.shuffle(choices)
        items.append({"context": context, "choices": choices, "gold": choices.index(" " + name)})
    return items


def recall_object(n):
    items = []
    for _ in range(n):
        kind, subj, poss, names = rng.choice(KINDS)
        name = rng.choice(names)
        obj = rng.choice(OBJECTS)
        colour = rng.choice(COLOURS)
        place = rng.choice(PLACES)
        context = (f"{name} went to the {place}. There, {subj.lower()} found a {colour} {obj}. "
                   f"{filler(rng.randint(2, 4))} {name} was very happy. {subj} took the {colour}")
        items.append({"context": context, "continuation": " " + obj})
    return items


CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo", "China": "Beijing",
    "Russia": "Moscow", "Egypt": "Cairo", "Canada": "Ottawa", "Australia": "Canberra", "Brazil": "Brasilia",
    "Argentina": "Buenos Aires", "Mexico": "Mexico City", "India": "New Delhi", "Kenya": "Nairobi", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen", "Poland": "Warsaw", "Greece": "Athens",
    "Portugal": "Lisbon", "Ireland": "Dublin", "Austria": "Vienna", "Hungary": "Budapest", "Turkey": "Ankara",
    "Peru": "Lima", "Chile": "Santiago", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Indonesia": "Jakarta",
    "South Korea": "Seoul", "Iran": "Tehran", "Iraq": "Baghdad", "Morocco": "Rabat", "Nigeria": "Abuja",
    "Ethiopia": "Addis Ababa", "Cuba": "Havana", "Colombia": "Bogota", "Netherlands": "Amsterdam",
    "Belgium": "Brussels", "Switzerland": "Bern", "Czech Republic": "Prague", "Romania": "Bucharest",
    "Ukraine": "Kyiv", "Philippines": "Manila", "Pakistan": "Islamabad", "New Zealand": "Wellington",
    "Saudi Arabia": "Riyadh", "Venezuela": "Caracas",
}


# The one-shot example before each question (the paper's); France stands in when Spain is asked.
SHOT = ("Spain", "France")


def one_shot(country):
    example = SHOT[0] if country != SHOT[0] else SHOT[1]
    return f"Q: What is the capital of {example}?\nA: {CAPITALS[example]}\n"


def capitals():
    items = []
    countries = sorted(CAPITALS)
    for country in countries:
        gold = CAPITALS[country]
        others = rng.sample([CAPITALS[c] for c in countries if c != country], 3)
        choices = [" " + gold] + [" " + o for o in others]
        rng.shuffle(choices)
        # choices are drawn as before the one-shot prefix (same seed stream), so the example's capital
        # can be a distractor: copying the example is then wrong, as it should be
        items.append({"context": one_shot(country) + f"Q: What is the capital of {country}?\nA:", "choices": choices,
                      "gold": choices.index(" " + gold)})
    return items


def stories(n):
    out = []
    for _ in range(n):
        kind, subj, poss, names = rng.choice(KINDS)
        name = rng.choice(names)
        friend = rng.choice([x for x in NAMES if x != name])
        obj = rng.choice(OBJECTS)
        colour = rng.choice(COLOURS)
        place = rng.choice(PLACES)
        out.append(
            f"Once upon a time, there was a little {kind} named {name}. {subj} had a {colour} {obj}. "
            f"{subj} loved {poss} {obj} very much. One day, {name} went to the {place} with {poss} friend {friend}. "
            f"{filler(2)} {friend} wanted to play with the {obj} too. {name} said, \"Let's share!\" "
            f"They played with the {colour} {obj} all day. {filler(1)} When the sun went down, {name} and {friend} "
            f"went home. They were very happy.")
    return out


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_jsonl(os.path.join(HERE, "tasks", "recall-name.jsonl"), recall_name(150))
    write_jsonl(os.path.join(HERE, "tasks", "recall-object.jsonl"), recall_object(150))
    write_jsonl(os.path.join(HERE, "tasks", "capitals.jsonl"), capitals())
    with open(os.path.join(HERE, "stories.txt"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(stories(60)) + "\n")
