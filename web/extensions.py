"""The Flask extensions, created unbound and attached in the app factory."""

from flask_htmx import HTMX
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from scheduler.models import Base

db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()
mail = Mail()
login = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
