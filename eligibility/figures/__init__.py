"""Plotly figure builders: pure functions of engine results, testable without a browser.

Colour-blind-safe palette (Okabe-Ito / plotly's Safe); every bar carries its value
as text and statuses also differ by pattern, so colour is never the only carrier.
"""

from __future__ import annotations

STATUS_COLORS = {"eligible": "#009E73", "pending": "#E69F00", "ineligible": "#CC79A7"}
STATUS_PATTERNS = {"eligible": "", "pending": "/", "ineligible": "x"}
# Pending counts values still to verify as well as missing ones, so every legend says both.
STATUS_TITLES = {"eligible": "Eligible", "pending": "Pending (data missing or to verify)", "ineligible": "Ineligible"}
SERIES_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=13)


def base_layout(fig, title: str = "", height: int | None = None):
    fig.update_layout(
        title=title or None, font=FONT, template="plotly_white", margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    )
    if height:
        fig.update_layout(height=height)
    return fig
