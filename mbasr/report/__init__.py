"""The report site, laid out like the paper (`mbasr report results/`, then `smalldocs render` or `quarto render`):

figures.py        one builder per figure: figure_1 ... figure_5 (Figure 2 is `figures.figure_2`)
draw.py           the figures' common drawing (paper hollow and dashed, ours filled with 95% CIs)
series.py         what each figure draws, read from results.csv in the paper's conventions
tables.py         each figure's table, the headline, the claims with their verdicts
findings.py       the generated words: what we found, verdict lines, limitations, citation
site.py           builds every figure, table and page fragment of a results folder
work_site.py      the same for any work folder (`mbasr site W`)
notebook_pages.py, nbtidy.py, publish.py   executed notebooks as pages, tidied and published
markdown.py, safe.py, reproduce.py, diagrams.py, plots.py, gap_plots.py   page pieces and notebook plots
"""
