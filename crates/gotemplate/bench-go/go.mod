module ferroflux.invalid/gotemplate/bench-go

go 1.27
