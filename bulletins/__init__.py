"""The content library: bulletins, editorial approval, and the inbox of bulletins from above."""
