# fire_event.py
import lightbus

# Here we assume we're writing another module within
# the same auth service, not creating a new service.
# Therefore import our bus client from bus.py
from bus import bus

# Fire the event. There is no return value when firing events
bus.auth.user_registered.fire(
    username='admin',
    email='admin@example.com'
)
