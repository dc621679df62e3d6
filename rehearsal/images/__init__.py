"""The images a rehearsal runs: stand-ins for pinned images no registry serves here
(standins.py, standin_files/), and app image variants, other commits made up for a run (variants.py)."""
