"""Rules of the product: who may see what, how jobs, lessons and renders change.

Services take the acting user as an argument (never `current_user`) and own the
commit, so a view is one service call.
"""
