"""Start the dashboard server: `python scripts/serve.py run app.py [streamlit options]`.

Streamlit treats an app that has a `pages/` folder as a legacy multipage app until
some session has called `st.navigation`, so a deep link (a shared scenario URL)
opened first on a fresh server would get the legacy page list and layout. This app
always routes with `st.navigation` in app.py, so we say so before the first session.
"""

import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web.cli import main

PagesManager.uses_pages_directory = False

if __name__ == "__main__":
    sys.argv[0] = "streamlit"
    sys.exit(main())
