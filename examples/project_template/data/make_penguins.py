#!/usr/bin/env python3
"""Writes penguins.csv and new_penguins.csv: SYNTHETIC penguins, drawn with a fixed seed from per-species
means and standard deviations close to those of the Palmer penguins data (Gorman, Williams and Fraser, 2014),
with the measurements of one bird correlated through a shared 'size' factor. Not real observations: a
stand-in of the same shape, so the template ships its data without a download.

    python3 make_penguins.py        (writes both files next to this script; the same bytes every time)
"""
import os
import random

# species: count, then (mean, sd) of bill length (mm), bill depth (mm), flipper length (mm), body mass (g)
SPECIES = {
    "Adelie": (152, [(38.8, 2.66), (18.3, 1.22), (190.0, 6.54), (3700.0, 458.0)]),
    "Chinstrap": (68, [(48.8, 3.34), (18.4, 1.14), (195.8, 7.13), (3733.0, 384.0)]),
    "Gentoo": (124, [(47.5, 3.08), (15.0, 0.98), (217.2, 6.48), (5076.0, 504.0)]),
}
LOADING = [0.55, 0.55, 0.75, 0.85]  # how much of each measurement the shared size factor explains


def bird(rng, stats):
    z = rng.gauss(0.0, 1.0)
    values = []
    for (mean, sd), a in zip(stats, LOADING):
        values.append(mean + sd * (a * z + (1.0 - a * a) ** 0.5 * rng.gauss(0.0, 1.0)))
    bill_l, bill_d, flipper, mass = values
    return [f"{bill_l:.1f}", f"{bill_d:.1f}", f"{round(flipper):d}", f"{round(mass / 25.0) * 25:d}"]


def main():
    rng = random.Random(20141105)
    rows = []
    for name, (count, stats) in SPECIES.items():
        rows += [[name] + bird(rng, stats) for _ in range(count)]
    rng.shuffle(rows)
    here = os.path.dirname(os.path.abspath(__file__))
    header = "species,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g\n"
    with open(os.path.join(here, "penguins.csv"), "w") as f:
        f.write(header)
        f.writelines(",".join(r) + "\n" for r in rows)
    # New birds to predict: no species column (that is what the classifier is for).
    with open(os.path.join(here, "new_penguins.csv"), "w") as f:
        f.write(header.split(",", 1)[1])
        for name in ["Adelie", "Gentoo", "Chinstrap", "Gentoo", "Adelie", "Chinstrap"]:
            f.write(",".join(bird(rng, SPECIES[name][1])) + "\n")


if __name__ == "__main__":
    main()
