"""The admin screens: the site, the provisioning actions customer and order admins share, the
call log, batches, the dashboard and the list machinery.

Empty on purpose: the site class lives in this package, and registering an admin here would
set up `admin.site` while that class is still being imported. `PortalAdminConfig.ready`
imports the modules that register.
"""
